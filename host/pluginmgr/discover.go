package pluginmgr

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/routinglayer/routing/sdk/pluginhost"
)

// Candidate is an executable in the plugins directory that may run as a
// plugin of the manager's kind.
type Candidate struct {
	// Name is the instance name: the file name without its kind prefix.
	Name string
	// Path is the file's absolute path.
	Path string
	// Size and ModTime identify the file's version between scans.
	Size    int64
	ModTime time.Time
	// sum is the SHA-256 the checksums file allows, when one is set.
	sum []byte
}

// Skipped is a file of the plugins directory that will not run, and why.
type Skipped struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

// Discover lists the plugins of kind in dir. A plugin is a regular,
// executable, non-hidden file named <kind>-<name> whose name is valid,
// whose real path is inside dir and which is not writable by group or
// others; every other entry with the kind prefix is reported as skipped.
// Entries without the prefix are ignored silently (they may belong to the
// other service sharing the directory).
func Discover(dir string, kind pluginhost.Kind) ([]Candidate, []Skipped, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("plugins dir %q: %w", dir, err)
	}
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("read plugins dir: %w", err)
	}
	prefix := string(kind) + "-"
	var (
		found   []Candidate
		skipped []Skipped
	)
	for _, e := range entries {
		file := e.Name()
		if strings.HasPrefix(file, ".") {
			if strings.HasPrefix(strings.TrimLeft(file, "."), prefix) {
				skipped = append(skipped, Skipped{file, "hidden file"})
			}
			continue
		}
		if !strings.HasPrefix(file, prefix) {
			continue
		}
		c, reason := inspect(root, file, strings.TrimPrefix(file, prefix))
		if reason != "" {
			skipped = append(skipped, Skipped{file, reason})
			continue
		}
		found = append(found, c)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	return found, skipped, nil
}

// inspect applies the rules of Discover to one file; a non-empty reason
// means it is skipped.
func inspect(root, file, name string) (Candidate, string) {
	if !pluginhost.ValidInstanceName(name) {
		return Candidate{}, fmt.Sprintf("name %q must match [a-z0-9][a-z0-9-]*", name)
	}
	path := filepath.Join(root, file)
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return Candidate{}, fmt.Sprintf("cannot resolve: %v", err)
	}
	if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return Candidate{}, "resolves outside the plugins directory"
	}
	info, err := os.Stat(real)
	if err != nil {
		return Candidate{}, fmt.Sprintf("cannot stat: %v", err)
	}
	mode := info.Mode()
	switch {
	case mode.IsDir():
		return Candidate{}, "is a directory"
	case !mode.IsRegular():
		return Candidate{}, "is not a regular file"
	case mode.Perm()&0o111 == 0:
		return Candidate{}, "is not executable"
	case mode.Perm()&0o022 != 0:
		return Candidate{}, fmt.Sprintf("is writable by group or others (mode %v): refusing to run it; fix with chmod go-w %s", mode.Perm(), path)
	}
	return Candidate{Name: name, Path: path, Size: info.Size(), ModTime: info.ModTime()}, ""
}

// sameVersion reports whether two scans saw the same file content, as far
// as size and modification time tell.
func (c Candidate) sameVersion(o Candidate) bool {
	return c.Path == o.Path && c.Size == o.Size && c.ModTime.Equal(o.ModTime)
}

// instanceNames lists the instance names of every plugin file in dir, of
// either kind and whether it runs or not: the owners of PLUGIN_<NAME>_*
// variables, which a plugin with a shorter name must not receive.
func instanceNames(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		for _, kind := range []pluginhost.Kind{pluginhost.KindWatcher, pluginhost.KindPusher} {
			if name, ok := strings.CutPrefix(e.Name(), string(kind)+"-"); ok && pluginhost.ValidInstanceName(name) {
				names = append(names, name)
			}
		}
	}
	return names
}
