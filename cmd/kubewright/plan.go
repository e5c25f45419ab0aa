package main

import (
	"github.com/spf13/cobra"
)

func newPlanCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{}
	c := &cobra.Command{
		Use:   "plan -i FILE PLAYBOOK",
		Short: "Show what a playbook would change on every host, changing nothing",
		Long: `plan connects to every host, gathers facts and runs each step's Plan, then
prints every host's planned changes. Nothing is applied. Steps are planned
against the hosts' current state, so a step that depends on an earlier change
(marked *) may change more or less when the playbook really runs.

It is the same as run --dry-run and writes a journal too.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlaybook(cmd, g, o, args[0], true)
		},
	}
	o.addFlags(c)
	return c
}
