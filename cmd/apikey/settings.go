package main

import (
	"fmt"
	"net/url"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { register(newSettingsCommand) }

// settingView is one setting as "apikey settings --json" prints it.
type settingView struct {
	Name   string `json:"name"`
	Env    string `json:"env"`
	Value  string `json:"value"`
	Source string `json:"source"` // flag, env, file or default
	From   string `json:"from,omitempty"`
}

func newSettingsCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "settings [--json]",
		Short: "Print every setting, its value and where it came from",
		Long: `Print every setting of apikey and apikey serve: its flag, its environment
variable, its value and where the value came from (flag, env, file or
default), as the other commands given the same flags, environment and
config file would see them. Secrets are not printed, nor the password of a
database URL. See "apikey help settings".`,
		Example: `  apikey settings
  APIKEY_MAX_KEYS_PER_OWNER=5 apikey settings --config apikey.json --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			views := a.settingViews(cmd, nil)
			serve, _, err := cmd.Root().Find([]string{"serve"})
			if err == nil && serve != nil && serve != cmd.Root() {
				if err := a.applySettings(serve); err != nil {
					return err
				}
				views = a.settingViews(serve, views)
			}
			sort.Slice(views, func(i, j int) bool { return views[i].Name < views[j].Name })
			if asJSON {
				return writeJSON(a.stdout, map[string]any{"settings": views})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SETTING\tENVIRONMENT\tVALUE\tSOURCE")
			for _, v := range views {
				src := v.Source
				if v.From != "" && v.Source == "file" {
					src = v.From
				}
				fmt.Fprintf(tw, "--%s\t%s\t%s\t%s\n", v.Name, v.Env, orDash(v.Value), src)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"settings": [{"name", "env", "value", "source", "from"}]}`)
	return cmd
}

// settingViews appends the settings of cmd not yet in views.
func (a *app) settingViews(cmd *cobra.Command, views []settingView) []settingView {
	seen := map[string]bool{}
	for _, v := range views {
		seen[v.Name] = true
	}
	for _, f := range settingFlags(cmd) {
		if seen[f.Name] {
			continue
		}
		src := a.sources[f.Name]
		v := settingView{Name: f.Name, Env: envName(f.Name), Value: displayValue(f), Source: src.kind}
		if src.kind != "default" && src.kind != "" {
			v.From = src.name
		}
		if v.Source == "" {
			v.Source = "default"
		}
		views = append(views, v)
	}
	return views
}

// displayValue renders a flag's value for printing: secrets hidden, URL
// passwords masked, lists without brackets.
func displayValue(f *pflag.Flag) string {
	if secretSettings[f.Name] {
		if f.Value.String() == "" {
			return ""
		}
		return "(set, hidden)"
	}
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		list := sv.GetSlice()
		s := ""
		for i, e := range list {
			if i > 0 {
				s += ","
			}
			s += e
		}
		return s
	}
	v := f.Value.String()
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	return v
}
