package kube

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NodeIdentity is what the inventory says a node is: the only names and
// addresses kubewright will put into that node's serving certificate.
type NodeIdentity struct {
	Name string
	// Addresses are the node's inventory addresses (address and internal
	// address); a serving CSR may name any subset of them.
	Addresses []string
}

// KubeletServingCSRProblem returns why csr must not be approved as the
// serving certificate of node, or "" when it may. The controller-manager does
// not approve kubelet-serving CSRs because a kubelet can ask for any name or
// IP; checking them against the inventory is what makes approving safe: a
// compromised node cannot get a certificate for another node's address.
func KubeletServingCSRProblem(csr *certsv1.CertificateSigningRequest, node NodeIdentity) string {
	if csr.Spec.SignerName != certsv1.KubeletServingSignerName {
		return fmt.Sprintf("signer %s, not %s", csr.Spec.SignerName, certsv1.KubeletServingSignerName)
	}
	user := "system:node:" + node.Name
	if csr.Spec.Username != user {
		return fmt.Sprintf("requested by %q, not %q", csr.Spec.Username, user)
	}
	if !slices.Contains(csr.Spec.Groups, "system:nodes") {
		return "requester is not in group system:nodes"
	}
	for _, u := range csr.Spec.Usages {
		switch u {
		case certsv1.UsageDigitalSignature, certsv1.UsageKeyEncipherment, certsv1.UsageServerAuth:
		default:
			return fmt.Sprintf("usage %q not allowed for a serving certificate", u)
		}
	}
	if !slices.Contains(csr.Spec.Usages, certsv1.UsageServerAuth) {
		return "usages lack server auth"
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return "request is not a PEM certificate request"
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return "request does not parse: " + err.Error()
	}
	if err := req.CheckSignature(); err != nil {
		return "request signature invalid: " + err.Error()
	}
	if req.Subject.CommonName != user || !slices.Equal(req.Subject.Organization, []string{"system:nodes"}) {
		return fmt.Sprintf("subject CN=%q O=%q, want CN=%q O=[system:nodes]", req.Subject.CommonName, req.Subject.Organization, user)
	}
	if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return "request has email or URI SANs"
	}
	if len(req.DNSNames)+len(req.IPAddresses) == 0 {
		return "request has no DNS or IP SANs"
	}
	for _, d := range req.DNSNames {
		if d != node.Name {
			return fmt.Sprintf("DNS SAN %q is not the node's inventory name %q", d, node.Name)
		}
	}
	for _, ip := range req.IPAddresses {
		ok := false
		for _, a := range node.Addresses {
			if p := net.ParseIP(a); p != nil && p.Equal(ip) {
				ok = true
			}
		}
		if !ok {
			return fmt.Sprintf("IP SAN %s is not one of the node's inventory addresses %s", ip, strings.Join(node.Addresses, ", "))
		}
	}
	return ""
}

func csrPending(csr *certsv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certsv1.CertificateApproved || c.Type == certsv1.CertificateDenied || c.Type == certsv1.CertificateFailed {
			return false
		}
	}
	return true
}

// CSRResult says what ApproveKubeletServingCSRs did with one node's CSRs.
type CSRResult struct {
	Approved []string
	// Refused maps a CSR name to why it was left pending.
	Refused map[string]string
}

// ApproveKubeletServingCSRs approves node's pending kubelet-serving CSRs that
// match its inventory identity and leaves the others pending (an operator
// sees them with the reason in Refused). Other nodes' CSRs are not looked at:
// each node's step approves its own.
func ApproveKubeletServingCSRs(ctx context.Context, cs kubernetes.Interface, node NodeIdentity) (CSRResult, error) {
	res := CSRResult{Refused: map[string]string{}}
	list, err := cs.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{
		FieldSelector: "spec.signerName=" + certsv1.KubeletServingSignerName,
	})
	if err != nil {
		return res, fmt.Errorf("list kubelet serving CSRs: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	for i := range list.Items {
		csr := &list.Items[i]
		if csr.Spec.SignerName != certsv1.KubeletServingSignerName || csr.Spec.Username != "system:node:"+node.Name || !csrPending(csr) {
			continue
		}
		if why := KubeletServingCSRProblem(csr, node); why != "" {
			res.Refused[csr.Name] = why
			continue
		}
		csr.Status.Conditions = append(csr.Status.Conditions, certsv1.CertificateSigningRequestCondition{
			Type:           certsv1.CertificateApproved,
			Status:         corev1.ConditionTrue,
			Reason:         "KubewrightInventoryMatch",
			Message:        "node name and addresses match the kubewright inventory",
			LastUpdateTime: metav1.Now(),
		})
		if _, err := cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return res, fmt.Errorf("approve CSR %s for node %s: %w", csr.Name, node.Name, err)
		}
		res.Approved = append(res.Approved, csr.Name)
	}
	return res, nil
}
