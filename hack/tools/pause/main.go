// Command pause is the pod sandbox's placeholder process: it holds the pod's
// namespaces open, reaps the zombies of processes that end up parented to it
// (it is PID 1 of the pod's PID namespace when that is shared), and exits
// cleanly on SIGTERM or SIGINT so the runtime can stop a sandbox without a
// SIGKILL. It is a Go rewrite of the behaviour of Kubernetes' pause.c, built
// statically because the lab has no registry to pull registry.k8s.io/pause from.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println("pause (kubewright) 3.10")
		return
	}
	if os.Getpid() != 1 {
		// Same warning as upstream: useful when someone runs it by hand.
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			reap()
		default:
			fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
			os.Exit(0)
		}
	}
}

// reap collects every exited child; one SIGCHLD may stand for several exits.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
