package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/engine"
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
