// Package checks holds kubewright-agent's node checks, one per file. Each
// check is a small struct whose exported fields are its configuration (the
// agent wires them from agent.Config); a zero field takes a documented
// default, so a check is usable without a constructor.
//
// Every check honours the context it is given, and ends each probe a little
// before that context does: a kubelet or etcd that hangs is then reported by
// the check itself as a Problem, instead of by the runner as an Unknown
// overrun. Results say what was checked and what was found in one sentence;
// they never include key material or credentials.
package checks
