// Command kubewright is the operator's CLI: it reads an inventory, connects to
// every host over SSH and runs playbooks. This package is wiring only: flags,
// signals and exit codes; the work lives under installer/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes are part of the CLI contract (documented in README).
const (
	exitOK       = 0
	exitFailed   = 1
	exitBadInput = 2
)

// badInputError marks errors caused by the operator's input (exit code 2).
type badInputError struct{ err error }

func (e *badInputError) Error() string { return e.err.Error() }
func (e *badInputError) Unwrap() error { return e.err }

// badInput wraps err so main exits with code 2.
func badInput(err error) error {
	if err == nil {
		return nil
	}
	return &badInputError{err: err}
}

func main() {
	os.Exit(exitCode(runMain(os.Args[1:], os.Stdout, os.Stderr)))
}

// runMain runs the CLI with args. SIGINT or SIGTERM cancels the command's
// context: a run cancels the commands on its hosts (a step that ignores
// that is abandoned after a few seconds), writes its journal and returns,
// and a re-run picks up from what is on the hosts. Signals stay caught
// until runMain returns, so a second Ctrl-C cannot cut the journal short.
func runMain(args []string, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "\nkubewright: %v: stopping; commands on hosts are cancelled and the journal is written\n", sig)
			cancel()
		case <-ctx.Done():
		}
	}()
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

func exitCode(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
	}
	return exitCodeQuiet(err)
}

// exitCodeQuiet maps an error to the CLI's exit code without printing it.
func exitCodeQuiet(err error) int {
	if err == nil {
		return exitOK
	}
	var bad *badInputError
	if errors.As(err, &bad) || isUsageError(err) {
		return exitBadInput
	}
	return exitFailed
}

// isUsageError recognises the errors cobra itself returns for bad command
// lines (missing required flags, unknown commands, wrong argument counts).
// Cobra returns them as plain errors, so their fixed wording is all there is
// to go by; flag parse errors are wrapped by the root's FlagErrorFunc instead.
func isUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"required flag(s)", "unknown command", "accepts ", "requires at least", "requires at most", "received "} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, "\n"+p) {
			return true
		}
	}
	return false
}
