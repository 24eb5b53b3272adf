package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Settings: every long flag of the root command (persistent, so every
// command has them) and every flag of a command annotated as a settings
// command (serve) is a setting. A setting is read, in this order of
// precedence, from
//
//  1. the flag on the command line,
//  2. the environment variable envName(flag): APIKEY_ and the flag's name
//     in capitals with "-" as "_" (--max-keys-per-owner is
//     APIKEY_MAX_KEYS_PER_OWNER),
//  3. the JSON config file of --config (or APIKEY_CONFIG): an object whose
//     names are the flags' names, {"max-keys-per-owner": 5}.
//
// This file is the one place that knows how: a flag added to serve or to
// the root command later gets its variable and its file entry for free.

// settingsAnnotation marks a command whose flags are all settings.
const settingsAnnotation = "apikey:settings"

// configFlag is the flag of the config file. It is read from the
// environment but not from the file itself.
const configFlag = "config"

// renamedSettings maps the old name of a setting to the global setting
// that replaced it. The old name stays accepted wherever it was: as a flag
// of its command (serve), as its variable and as its config file entry;
// at each level of precedence the new name wins over the old one, and a
// flag, variable or entry of either name wins over the next level. serve's
// --inactivity-expiry became --default-inactivity-expiry when every
// command (list, show, verify...) had to know the default to report the
// state of a key as serve sees it.
var renamedSettings = map[string]string{"inactivity-expiry": "default-inactivity-expiry"}

// oldSettingName returns the old name of the setting, or "".
func oldSettingName(name string) string {
	for old, now := range renamedSettings {
		if now == name {
			return old
		}
	}
	return ""
}

// envAliases are the variables whose names predate the rule of envName.
var envAliases = map[string]string{
	"redis": "APIKEY_REDIS_ADDR",
}

// notSettings are flags that are never read from the environment or the
// file: cobra's own, and the per-invocation ones.
var notSettings = map[string]bool{"help": true, "version": true}

// secretSettings are settings whose values are never printed, and which
// may not be given on the command line (process lists show it).
var secretSettings = map[string]bool{"pepper": true}

// envName returns the environment variable of the setting flag.
func envName(flag string) string {
	if v, ok := envAliases[flag]; ok {
		return v
	}
	return "APIKEY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// annotateSettings appends its environment variable to the help of every
// setting flag of the tree of root: "(or $APIKEY_CACHE_TTL)".
func annotateSettings(root *cobra.Command) {
	done := map[*pflag.Flag]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, f := range settingFlags(c) {
			if !done[f] && !f.Hidden {
				done[f] = true
				f.Usage += " (or $" + envName(f.Name) + ")"
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// markSettings makes every flag of cmd a setting.
func markSettings(cmd *cobra.Command) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[settingsAnnotation] = "true"
}

// isSettingsCommand reports whether the flags of cmd are settings.
func isSettingsCommand(cmd *cobra.Command) bool {
	return cmd.Annotations[settingsAnnotation] == "true"
}

// settingFlags returns the flags of cmd that are settings: the persistent
// flags of the root command, and, for a settings command, its own.
func settingFlags(cmd *cobra.Command) []*pflag.Flag {
	var out []*pflag.Flag
	add := func(f *pflag.Flag) {
		if _, renamed := renamedSettings[f.Name]; renamed && f != cmd.Root().PersistentFlags().Lookup(f.Name) {
			return // read as its new name (see renamedSettings)
		}
		if !notSettings[f.Name] && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	cmd.Root().PersistentFlags().VisitAll(add)
	if isSettingsCommand(cmd) {
		cmd.Flags().VisitAll(add)
	}
	return out
}

// allSettingNames returns the names of the settings of every command of
// the tree of root: what a config file may hold.
func allSettingNames(root *cobra.Command) map[string]bool {
	names := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, f := range settingFlags(c) {
			names[f.Name] = true
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for old := range renamedSettings {
		names[old] = true
	}
	delete(names, configFlag)
	return names
}

// source says where the value of a setting came from.
type source struct {
	kind string // "flag", "env", "file" or "default"
	name string // --flag, APIKEY_VAR or "name" in FILE
}

// applySettings fills the settings of cmd that were not given as flags
// from the environment, then from the config file, and records where each
// came from (see setting). Errors name the setting and the fix.
func (a *app) applySettings(cmd *cobra.Command) error {
	a.sources = map[string]source{}
	flags := settingFlags(cmd)
	file, err := a.readConfigFile(cmd)
	if err != nil {
		return err
	}
	for _, f := range flags {
		if old := oldSettingName(f.Name); old != "" {
			if err := a.applyRenamed(cmd, f, old, file); err != nil {
				return err
			}
			continue
		}
		env := envName(f.Name)
		switch {
		case f.Changed:
			if secretSettings[f.Name] {
				return usagef("--%s on the command line is visible to every user of the machine: set %s or %q in the config file instead", f.Name, env, f.Name)
			}
			a.sources[f.Name] = source{"flag", "--" + f.Name}
		case a.getenv(env) != "":
			v := a.getenv(env)
			if err := setFlag(f, splitList(f, v)); err != nil {
				return usagef("invalid %s %s: %s", env, quoteSetting(f.Name, v), flagProblem(f, err))
			}
			a.sources[f.Name] = source{"env", env}
		case file.values[f.Name] != nil:
			vals, err := fileValues(f, file.values[f.Name])
			if err == nil {
				err = setFlag(f, vals)
			}
			if err != nil {
				return usagef("invalid %q in %s: %s", f.Name, file.path, flagProblem(f, err))
			}
			a.sources[f.Name] = source{"file", fmt.Sprintf("%q in %s", f.Name, file.path)}
		default:
			a.sources[f.Name] = source{"default", "--" + f.Name}
		}
	}
	return nil
}

// applyRenamed fills the setting f, whose old name is old, as
// applySettings does, reading the old name after the new one at each
// level: the flag (the old one is a flag of serve only), the variable, the
// file entry. The setting's source names what the user wrote, so that
// errors quote it. Both flags given with different values are refused.
// The setting must be a plain string (the only renamed one is).
func (a *app) applyRenamed(cmd *cobra.Command, f *pflag.Flag, old string, file configFile) error {
	var oldFlag *pflag.Flag
	if isSettingsCommand(cmd) {
		if of := cmd.Flags().Lookup(old); of != nil && of != f && of.Changed {
			oldFlag = of
		}
	}
	env, oldEnv := envName(f.Name), envName(old)
	set := func(v string, src source) error {
		if err := f.Value.Set(v); err != nil {
			return usagef("invalid %s %q: %v", src.name, v, err)
		}
		a.sources[f.Name] = src
		return nil
	}
	fileString := func(name string) (string, error) {
		vals, err := fileValues(f, file.values[name])
		if err != nil {
			return "", usagef("invalid %q in %s: %s", name, file.path, flagProblem(f, err))
		}
		return vals[0], nil
	}
	switch {
	case f.Changed && oldFlag != nil && oldFlag.Value.String() != f.Value.String():
		return usagef("--%s and --%s (its old name) disagree: give --%s only", f.Name, old, f.Name)
	case f.Changed:
		a.sources[f.Name] = source{"flag", "--" + f.Name}
	case oldFlag != nil:
		return set(oldFlag.Value.String(), source{"flag", "--" + old})
	case a.getenv(env) != "":
		return set(a.getenv(env), source{"env", env})
	case a.getenv(oldEnv) != "":
		return set(a.getenv(oldEnv), source{"env", oldEnv})
	case file.values[f.Name] != nil:
		v, err := fileString(f.Name)
		if err != nil {
			return err
		}
		return set(v, source{"file", fmt.Sprintf("%q in %s", f.Name, file.path)})
	case file.values[old] != nil:
		v, err := fileString(old)
		if err != nil {
			return err
		}
		return set(v, source{"file", fmt.Sprintf("%q in %s", old, file.path)})
	default:
		a.sources[f.Name] = source{"default", "--" + f.Name}
	}
	return nil
}

// setting names a setting as the user gave it, for error messages:
// "--cache-ttl", "APIKEY_CACHE_TTL" or `"cache-ttl" in apikey.json`.
func (a *app) setting(name string) string {
	if s, ok := a.sources[name]; ok {
		return s.name
	}
	return "--" + name
}

// settingSet reports whether the setting was given anywhere (flag,
// environment or file).
func (a *app) settingSet(name string) bool {
	s, ok := a.sources[name]
	return ok && s.kind != "default"
}

// configFile is a parsed config file.
type configFile struct {
	path   string
	values map[string]json.RawMessage
}

// readConfigFile reads the file of --config, else APIKEY_CONFIG. No file
// is no settings. Unknown names are refused, so that a misspelt setting is
// not silently ignored.
func (a *app) readConfigFile(cmd *cobra.Command) (configFile, error) {
	path := ""
	name := "--config"
	if f := cmd.Root().PersistentFlags().Lookup(configFlag); f != nil && f.Changed {
		path = f.Value.String()
	} else if v := a.getenv(envName(configFlag)); v != "" {
		path, name = v, envName(configFlag)
	}
	if path == "" {
		return configFile{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return configFile{}, usagef("%s: cannot read the config file: %v", name, errors.Unwrap(err))
	}
	var values map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&values); err != nil {
		return configFile{}, usagef("config file %s is not a JSON object of settings: %v (see \"apikey help settings\")", path, err)
	}
	if dec.More() {
		return configFile{}, usagef("config file %s holds more than one JSON value: want one object of settings", path)
	}
	known := allSettingNames(cmd.Root())
	var unknown []string
	for k := range values {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return configFile{}, usagef("config file %s: unknown setting %q: the settings are the long flags of apikey and apikey serve, without the dashes (see \"apikey help settings\")", path, unknown[0])
	}
	return configFile{path: path, values: values}, nil
}

// splitList splits the value of a list-valued flag given in the
// environment on commas; other values stay whole.
func splitList(f *pflag.Flag, v string) []string {
	if _, ok := f.Value.(pflag.SliceValue); ok {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return []string{v}
}

// fileValues turns a JSON value of the config file into flag values: a
// string, a number, a boolean, or, for a list-valued flag, an array of
// them.
func fileValues(f *pflag.Flag, raw json.RawMessage) ([]string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	_, isList := f.Value.(pflag.SliceValue)
	scalar := func(v any) (string, error) {
		switch v := v.(type) {
		case string:
			return v, nil
		case json.Number:
			return v.String(), nil
		case bool:
			return strconv.FormatBool(v), nil
		}
		return "", fmt.Errorf("want a %s", jsonKind(f))
	}
	if arr, ok := v.([]any); ok {
		if !isList {
			return nil, fmt.Errorf("want a %s, not a list", jsonKind(f))
		}
		out := make([]string, 0, len(arr))
		for _, e := range arr {
			s, err := scalar(e)
			if err != nil {
				return nil, errors.New("want a list of strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	if v == nil {
		return nil, fmt.Errorf("want a %s, not null", jsonKind(f))
	}
	s, err := scalar(v)
	if err != nil {
		return nil, err
	}
	if isList {
		return splitList(f, s), nil
	}
	return []string{s}, nil
}

// jsonKind names the JSON type a flag's value takes in the config file.
func jsonKind(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "bool":
		return "boolean (true or false)"
	case "int", "int64", "uint", "float64":
		return "number"
	case "duration":
		return `duration string such as "30s"`
	}
	if _, ok := f.Value.(pflag.SliceValue); ok {
		return "list of strings"
	}
	return "string"
}

// setFlag sets a flag from outside the command line: without marking it
// changed, so that Changed still means "given as a flag".
func setFlag(f *pflag.Flag, vals []string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.Replace(vals)
	}
	if len(vals) != 1 {
		return errors.New("want one value")
	}
	return f.Value.Set(vals[0])
}

// flagProblem phrases the error of a flag value that did not parse.
func flagProblem(f *pflag.Flag, err error) string {
	switch f.Value.Type() {
	case "bool":
		return "want true or false"
	case "int", "int64", "uint":
		return "want a whole number"
	case "duration":
		return "want a duration such as 30s, 5m or 1h"
	}
	return err.Error()
}

// quoteSetting quotes a value for an error message, unless it is secret.
func quoteSetting(name, v string) string {
	if secretSettings[name] {
		return "(value hidden)"
	}
	return strconv.Quote(v)
}

// settingsHelp is the help topic "settings".
const settingsHelp = `Every setting of apikey and apikey serve can be given three ways; the first
that is set wins:

  1. the flag:                      --max-keys-per-owner 5
  2. the environment variable:      APIKEY_MAX_KEYS_PER_OWNER=5
     (APIKEY_ and the flag's name in capitals, "-" as "_")
  3. the JSON config file of --config FILE (or APIKEY_CONFIG), an object
     whose names are the flags' names without the dashes:

       {
         "db": "postgres://apikey@db/apikey",
         "max-keys-per-owner": 5,
         "header": ["X-Api-Authorization"],
         "cache-ttl": "1m"
       }

The settings are the flags that apikey --help lists as global, and every
flag of apikey serve. A list (--header, --scheme, --leak-policy-owner) is
separated by commas in the environment and a JSON array in the file; a
duration is a string such as "30s"; a switch is true or false. The one
exception to the naming rule is --redis, whose variable is
APIKEY_REDIS_ADDR. A renamed setting keeps its old name, read after the new
one at each level: --default-inactivity-expiry was serve's
--inactivity-expiry (APIKEY_INACTIVITY_EXPIRY, "inactivity-expiry").

The pepper (APIKEY_PEPPER, "pepper" in the file) has no flag: a flag is
visible to every user of the machine in its process list.

"apikey settings" prints the value of every setting and where it came
from. A config file with an unknown name, or a value of the wrong type, is
refused at start with a message that names it; so are invalid values from
any source.`
