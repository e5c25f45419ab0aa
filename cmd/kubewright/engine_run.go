package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/kube"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/steps"
)

// loadPlaybook resolves an embedded playbook (or a path) and checks it
// against kubewright's steps.
func loadPlaybook(name string) (*engine.Playbook, *engine.Registry, error) {
	pb, err := engine.ResolvePlaybook(name)
	if err != nil {
		return nil, nil, badInput(err)
	}
	reg := engine.NewRegistry()
	steps.Register(reg)
	if err := pb.Validate(reg); err != nil {
		return nil, nil, badInput(err)
	}
	return pb, reg, nil
}

// checkEventOutput refuses an -o that runEngine's event sink cannot write,
// before anything is connected to or changed.
func checkEventOutput(g *globalOptions) error {
	_, closeSink, err := engine.NewConsoleSink(io.Discard, g.output)
	if err != nil {
		return badInput(err)
	}
	closeSink()
	return nil
}

// runEngine runs a playbook the way every command does: events to stdout
// in -o's format, with -v a debug log of every command on stderr, the plan
// printed after a dry run, and an invalid playbook or selector reported as
// bad input. Other errors are returned for the caller to wrap.
func runEngine(cmd *cobra.Command, g *globalOptions, opts engine.Options) (*engine.Result, error) {
	out := cmd.OutOrStdout()
	sink, closeSink, err := engine.NewConsoleSink(out, g.output)
	if err != nil {
		return nil, badInput(err)
	}
	defer closeSink() // idempotent; closed before the plan is printed
	opts.Events = sink
	if g.verbose {
		opts.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	res, err := engine.Run(cmd.Context(), opts)
	closeSink()
	var invalid *engine.InvalidError
	if errors.As(err, &invalid) {
		return res, badInput(err)
	}
	if res != nil && opts.DryRun && g.output != "json" {
		fmt.Fprintln(out)
		engine.RenderPlan(out, res)
	}
	return res, err
}

// isBadInput reports whether err is the operator's input (exit code 2).
func isBadInput(err error) bool {
	var b *badInputError
	return errors.As(err, &b)
}

// confirm asks on stderr and reads one line from stdin: the operator must
// type want for a destructive command to go on. Anything else is bad input
// and nothing has changed.
func confirm(cmd *cobra.Command, question, prompt, want string) error {
	fmt.Fprintf(cmd.ErrOrStderr(), "%s\n%s: ", question, prompt)
	answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if strings.TrimSpace(answer) != want {
		return badInput(errors.New("not confirmed; nothing was changed (pass --yes to skip the question)"))
	}
	return nil
}

// adminClient is a client with the admin kubeconfig install wrote into the
// cluster's state directory.
func adminClient(clusterDir string) (*kube.Client, error) {
	admin := pki.NewStore(steps.PKIDir(clusterDir), nil).AdminKubeconfigPath()
	kc, err := os.ReadFile(admin)
	if err != nil {
		return nil, badInput(fmt.Errorf("read the admin kubeconfig (install writes it): %w", err))
	}
	client, err := kube.NewClient(kc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", admin, err)
	}
	return client, nil
}
