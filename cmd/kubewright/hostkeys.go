package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/inventory"
)

// hostKeyOptions are the host-key flags of every command that connects to
// inventory hosts over SSH. They are registered by addHostKeyFlags only, so
// each of those commands offers the same two ways past strict checking and
// documents them the same way: a command without them could not get past a
// reinstalled host's new key at all.
type hostKeyOptions struct {
	acceptNew   bool
	replaceKeys []string
}

// addHostKeyFlags registers --accept-new-host-keys and --replace-host-key
// on c.
func addHostKeyFlags(c *cobra.Command, o *hostKeyOptions) {
	c.Flags().BoolVar(&o.acceptNew, "accept-new-host-keys", false, "record host keys not yet in the cluster's known_hosts (a changed key is still refused)")
	c.Flags().StringArrayVar(&o.replaceKeys, "replace-host-key", nil, "accept and record the changed host key of the inventory host `NAME` (a reinstalled machine whose new fingerprint you verified); repeat for each host")
}

// check refuses a --replace-host-key that names no inventory host. Commands
// call it right after loading the inventory, before they ask, write or
// drain anything, so a typo costs nothing; newSSHConnector calls it too, so
// no command can dial with an unchecked name.
func (o hostKeyOptions) check(cl *inventory.Cluster) error {
	for _, n := range o.replaceKeys {
		if cl.Host(n) == nil {
			example := "NAME"
			if len(cl.Spec.Hosts) > 0 {
				example = cl.Spec.Hosts[0].Name
			}
			return badInput(fmt.Errorf("--replace-host-key %q: no host of that name in the inventory; name the host whose key changed, e.g. --replace-host-key %s", n, example))
		}
	}
	return nil
}

// replace is the set of hosts whose changed key is accepted.
func (o hostKeyOptions) replace() map[string]bool {
	m := make(map[string]bool, len(o.replaceKeys))
	for _, n := range o.replaceKeys {
		m[n] = true
	}
	return m
}
