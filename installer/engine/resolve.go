package engine

import (
	"fmt"
	"os"
	"strings"

	"github.com/kubewright/kubewright/playbooks"
)

// ResolvePlaybook loads a playbook named on the command line: a path when it
// contains a slash or ends in .yaml/.yml, otherwise an embedded playbook by
// name (install, check, ...). Both failures are *InvalidError (bad input).
func ResolvePlaybook(arg string) (*Playbook, error) {
	if strings.ContainsRune(arg, os.PathSeparator) || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") {
		data, err := os.ReadFile(arg)
		if err != nil {
			return nil, &InvalidError{Source: arg, Problems: []Problem{{Msg: fmt.Sprintf("read playbook: %v", err)}}}
		}
		return LoadPlaybook(arg, data)
	}
	names := playbooks.Names()
	if !contains(names, arg) {
		msg := fmt.Sprintf("no such playbook (embedded: %s; or give a path to a .yaml file)", strings.Join(names, ", "))
		if s := suggest(arg, names); s != "" {
			msg = fmt.Sprintf("no such playbook; did you mean %q? (embedded: %s; or give a path to a .yaml file)", s, strings.Join(names, ", "))
		}
		return nil, &InvalidError{Source: arg, Problems: []Problem{{Msg: msg}}}
	}
	data, err := playbooks.Get(arg)
	if err != nil {
		return nil, &InvalidError{Source: arg, Problems: []Problem{{Msg: err.Error()}}}
	}
	return LoadPlaybook("embedded:"+arg, data)
}
