package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/inventory"
)

func newInventoryCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "inventory",
		Short: "Check an inventory file or print it with every default filled in",
		Long: `The inventory describes the cluster: hosts, groups and settings.
Its format, every field and every default are in docs/inventory.md;
inventories/sample/inventory.yaml is an annotated example.`,
	}
	c.AddCommand(newInventoryValidateCmd(g), newInventoryShowCmd(g))
	return c
}

// validateReport is the -o json form of `inventory validate`.
type validateReport struct {
	OK       bool                   `json:"ok"`
	Hosts    int                    `json:"hosts"`
	Masters  int                    `json:"masters"`
	Etcd     int                    `json:"etcd"`
	Workers  int                    `json:"workers"`
	Errors   []inventory.FieldError `json:"errors"`
	Warnings []inventory.Warning    `json:"warnings"`
}

func newInventoryValidateCmd(g *globalOptions) *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:   "validate -i FILE",
		Short: "Report every problem in an inventory (exit code 2 if there are errors)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := inventoryCheckOutput(g.output, "text", "json"); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			cl, err := inventory.Load(path)
			var ve *inventory.ValidationError
			if err != nil && !errors.As(err, &ve) {
				return badInput(err) // unreadable file
			}
			rep := validateReport{OK: err == nil, Errors: []inventory.FieldError{}, Warnings: []inventory.Warning{}}
			if ve != nil {
				rep.Errors, rep.Warnings = ve.Errors, ve.Warnings
			} else {
				rep.Warnings = append(rep.Warnings, cl.Warnings...)
				rep.Hosts, rep.Masters = len(cl.Spec.Hosts), len(cl.Masters())
				rep.Etcd, rep.Workers = len(cl.Etcd()), len(cl.Workers())
			}
			if g.output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return fmt.Errorf("write report: %w", err)
				}
			} else {
				printValidateText(out, rep)
			}
			if !rep.OK {
				return badInput(fmt.Errorf("inventory %s is invalid: %s", path, inventoryPlural(len(rep.Errors), "error")))
			}
			return nil
		},
	}
	addInventoryFlag(c, &path)
	return c
}

func printValidateText(w io.Writer, rep validateReport) {
	for _, e := range rep.Errors {
		fmt.Fprintln(w, e.Error())
	}
	for _, wn := range rep.Warnings {
		fmt.Fprintln(w, "warning:", wn.String())
	}
	if rep.OK {
		fmt.Fprintf(w, "inventory OK: %s (%d masters, %d etcd, %d workers)", inventoryPlural(rep.Hosts, "host"), rep.Masters, rep.Etcd, rep.Workers)
		if n := len(rep.Warnings); n > 0 {
			fmt.Fprintf(w, ", %s", inventoryPlural(n, "warning"))
		}
		fmt.Fprintln(w)
	}
}

func newInventoryShowCmd(g *globalOptions) *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:   "show -i FILE [-o yaml|json]",
		Short: "Print the inventory with ranges expanded and every default filled in",
		Long: `show prints the inventory as kubewright understands it: host ranges expanded,
defaults applied, groups resolved. The YAML output is itself a valid inventory.
Warnings go to stderr so the output stays machine-readable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := inventoryCheckOutput(g.output, "text", "yaml", "json"); err != nil {
				return err
			}
			cl, err := inventory.Load(path)
			if err != nil {
				var ve *inventory.ValidationError
				if errors.As(err, &ve) {
					for _, w := range ve.Warnings {
						fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w.String())
					}
				}
				return badInput(err)
			}
			for _, w := range cl.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w.String())
			}
			format := inventory.FormatYAML
			if g.output == "json" {
				format = inventory.FormatJSON
			}
			b, err := cl.Render(format)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	addInventoryFlag(c, &path)
	return c
}

func addInventoryFlag(c *cobra.Command, path *string) {
	c.Flags().StringVarP(path, "inventory", "i", "", "inventory file (required)")
	_ = c.MarkFlagRequired("inventory")
	_ = c.MarkFlagFilename("inventory", "yaml", "yml")
}

func inventoryCheckOutput(got string, valid ...string) error {
	for _, v := range valid {
		if got == v {
			return nil
		}
	}
	return badInput(fmt.Errorf("unknown --output %q for this command (use one of %v)", got, valid))
}

func inventoryPlural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
