package steps

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"text/template"

	"github.com/kubewright/kubewright/installer/engine"
)

// Host templates: the generic steps for operators' playbooks (copy, template,
// line, directory, absent, command) read their path and command parameters
// as Go templates (text/template) rendered per host, so one play can give
// every host its own path or value, as Ansible's {{ inventory_hostname }}
// does:
//
//	path: /srv/app/{{ .Host.Name }}/app.conf
//
// The data is HostData. A parameter without "{{" is a literal and is checked
// completely when the playbook is validated; a templated one is parsed then
// (syntax errors are bad input) and checked again once rendered for a host.
// A missing map key (a label the host lacks) is an error, not "<no value>".

// HostData is what host templates see.
type HostData struct {
	Host HostVars
	// Facts are the host's facts gathered at the start of the run (OS,
	// Hostname, Kernel, CPUs, MemoryMiB, ...); zero values when absent.
	Facts engine.Facts
	// Cluster is the inventory's metadata.name.
	Cluster string
}

// HostVars is the host's inventory entry as templates see it.
type HostVars struct {
	Name            string
	Address         string
	InternalAddress string
	Labels          map[string]string
	Groups          []string
}

// NewHostData builds the template data for a target.
func NewHostData(t *engine.Target) HostData {
	var d HostData
	if t.Inv != nil {
		d.Host = HostVars{
			Name: t.Inv.Name, Address: t.Inv.Address, InternalAddress: t.Inv.InternalAddress,
			Labels: t.Inv.Labels, Groups: t.Inv.Groups,
		}
		if d.Host.InternalAddress == "" {
			d.Host.InternalAddress = d.Host.Address
		}
	}
	if t.Facts != nil {
		d.Facts = *t.Facts
	}
	if t.Cluster != nil {
		d.Cluster = t.Cluster.Metadata.Name
	}
	return d
}

// hostTemplate is one parameter value, literal or templated.
type hostTemplate struct {
	src string
	tpl *template.Template // nil for a literal
}

func parseHostTemplate(param, src string) (hostTemplate, error) {
	if !strings.Contains(src, "{{") {
		return hostTemplate{src: src}, nil
	}
	tpl, err := template.New(param).Option("missingkey=error").Parse(src)
	if err != nil {
		return hostTemplate{}, fmt.Errorf("parameter %q is not a valid template: %w", param, err)
	}
	return hostTemplate{src: src, tpl: tpl}, nil
}

func (h hostTemplate) templated() bool { return h.tpl != nil }

func (h hostTemplate) render(t *engine.Target) (string, error) {
	if h.tpl == nil {
		return h.src, nil
	}
	var b strings.Builder
	if err := h.tpl.Execute(&b, NewHostData(t)); err != nil {
		return "", fmt.Errorf("render %s: %w", h.tpl.Name(), err)
	}
	return b.String(), nil
}

// hostPath is a required, absolute, clean path parameter, possibly templated.
type hostPath struct {
	param string
	t     hostTemplate
}

func checkAbsPath(param, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("parameter %q is empty", param)
	case !path.IsAbs(p):
		return fmt.Errorf("%s %q is not absolute", param, p)
	case path.Clean(p) != p:
		return fmt.Errorf("%s %q is not clean (did you mean %q?)", param, p, path.Clean(p))
	case p == "/":
		return fmt.Errorf(`%s "/" is the root directory`, param)
	}
	return nil
}

func parseHostPath(with map[string]string, param string) (hostPath, error) {
	v, ok := with[param]
	if !ok || v == "" {
		return hostPath{}, fmt.Errorf("parameter %q is required", param)
	}
	t, err := parseHostTemplate(param, v)
	if err != nil {
		return hostPath{}, err
	}
	if !t.templated() {
		if err := checkAbsPath(param, v); err != nil {
			return hostPath{}, err
		}
	} else if !strings.HasPrefix(v, "/") {
		return hostPath{}, fmt.Errorf("%s %q is not absolute", param, v)
	}
	return hostPath{param: param, t: t}, nil
}

// render returns the host's path, checked again after rendering.
func (p hostPath) render(t *engine.Target) (string, error) {
	s, err := p.t.render(t)
	if err != nil {
		return "", err
	}
	if err := checkAbsPath(p.param, s); err != nil {
		return "", fmt.Errorf("rendered %w", err)
	}
	return s, nil
}

// parseMode reads an octal permission parameter, def when absent.
func parseMode(with map[string]string, param string, def fs.FileMode) (fs.FileMode, error) {
	v, ok := with[param]
	if !ok {
		return def, nil
	}
	m, err := strconv.ParseUint(v, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("%s %q is not an octal permission from 0000 to 0777 (like \"0644\")", param, v)
	}
	return fs.FileMode(m), nil
}

// parseOwner reads an optional user:group parameter.
func parseOwner(with map[string]string) (string, error) {
	owner := with["owner"]
	if owner != "" && !ownerRe.MatchString(owner) {
		return "", fmt.Errorf("owner %q is not user:group", owner)
	}
	return owner, nil
}

// parseBool reads an optional true/false parameter.
func parseBool(with map[string]string, param string) (bool, error) {
	v, ok := with[param]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s %q is not true or false", param, v)
	}
	return b, nil
}
