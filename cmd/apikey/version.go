package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

func init() { register(newVersionCommand) }

// buildVersion, when set at link time (go build -ldflags "-X
// main.buildVersion=v1.2.3"), is the version; else the module version the
// go command recorded, else the commit.
var buildVersion string

// versionInfo is what "apikey version --json" prints.
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// readVersion returns the version of the binary: a release version when
// the go command or the linker recorded one, else "devel" with the commit
// of the checkout it was built from, when go build recorded it.
func readVersion() versionInfo {
	v := versionInfo{Version: buildVersion, Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if ok && v.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v.Version = info.Main.Version
	}
	if ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	return v
}

// version renders readVersion on one line: "v1.2.0 (go1.26)", or, for a
// build from a checkout, "devel+0123456789ab (go1.26, commit of
// 2026-12-01T10:00:00Z, modified)", or, where the build recorded no commit
// (go run, -buildvcs=false), "devel (go1.26, no commit recorded ...)".
func version() string {
	v := readVersion()
	s, notes := v.Version, []string{v.Go}
	switch {
	case v.Commit != "":
		c := v.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if v.Version == "devel" {
			s += "+" + c
		}
		if v.Time != "" {
			notes = append(notes, "commit of "+v.Time)
		}
		if v.Modified {
			notes = append(notes, "modified")
		}
	case v.Version == "devel":
		notes = append(notes, "no commit recorded: built by go run or with -buildvcs=false")
	}
	return fmt.Sprintf("%s (%s)", s, strings.Join(notes, ", "))
}

func newVersionCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print the version",
		Long: `Print the version: a release version, or, for a build from a checkout,
"devel" and the commit it was built from (go build and go install record
it; go run does not).`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if asJSON {
				return writeJSON(a.stdout, readVersion())
			}
			_, err := fmt.Fprintf(a.stdout, "apikey %s\n", version())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"version", "commit", "commit_time", "modified", "go"}`)
	return cmd
}
