package lab

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net"
)

// Lab subnets come from 10.150.0.0/16 … 10.199.255.0/24: clear of the usual
// pod (10.244/16) and service (10.96/12) ranges the cluster installed on the
// lab will use, so routes inside the machines never overlap.
const (
	subnetFirstX = 150
	subnetCountX = 50
)

// pickSubnet returns the first /24 free of every network in used, starting at
// a point derived from the lab name so two labs rarely probe the same ranges.
func pickSubnet(name string, used []*net.IPNet) (*net.IPNet, error) {
	h := fnv.New32a()
	h.Write([]byte(name))
	total := uint32(subnetCountX * 256)
	start := h.Sum32() % total
	for i := uint32(0); i < total; i++ {
		n := (start + i) % total
		cand := &net.IPNet{
			IP:   net.IPv4(10, byte(subnetFirstX+n/256), byte(n%256), 0).To4(),
			Mask: net.CIDRMask(24, 32),
		}
		if !overlapsAny(cand, used) {
			return cand, nil
		}
	}
	return nil, fmt.Errorf("no free /24 in 10.%d.0.0-10.%d.255.0 for lab %s", subnetFirstX, subnetFirstX+subnetCountX-1, name)
}

func overlapsAny(n *net.IPNet, used []*net.IPNet) bool {
	for _, u := range used {
		if u == nil {
			continue
		}
		if ones, _ := u.Mask.Size(); ones == 0 {
			continue // a default route covers everything and collides with nothing
		}
		if u.Contains(n.IP) || n.Contains(u.IP) {
			return true
		}
	}
	return false
}

// hostAddr returns the address .host in a /24.
func hostAddr(n *net.IPNet, host int) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, binary.BigEndian.Uint32(n.IP.To4())+uint32(host))
	return ip
}

// Addresses inside a lab subnet: the bridge is .1, machines .11 upwards, the
// VIP .100 (machines stop at .60 with maxMachines 50).
const (
	gatewayHost      = 1
	firstMachineHost = 10
	vipHost          = 100
)
