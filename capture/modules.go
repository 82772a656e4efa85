package capture

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ModuleTree is a kernel's module directory, /lib/modules/RELEASE: the
// .ko files, and the index depmod makes of them (modules.dep,
// modules.builtin, modules.alias). Without modules.dep, each module's
// dependencies are read from the depends= field of its .modinfo section.
type ModuleTree struct {
	Dir     string
	mods    map[string]*Module // by name ('-' as '_')
	builtin map[string]bool
	alias   map[string]string
	fromDep bool
}

// Module is one loadable module of a tree.
type Module struct {
	Name string   `json:"name"`
	Path string   `json:"path"` // relative to the tree, as in modules.dep
	Deps []string `json:"deps,omitempty"`
	Size int64    `json:"size"`
}

func isModuleFile(name string) bool {
	for _, s := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// OpenModuleTree indexes the module directory dir.
func OpenModuleTree(dir string) (*ModuleTree, error) {
	t := &ModuleTree{Dir: dir, mods: map[string]*Module{}, builtin: map[string]bool{}, alias: map[string]string{}}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.dep")); err == nil {
		t.fromDep = true
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			file, deps, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("%s/modules.dep:%d: no ':' in %q", dir, n, line)
			}
			m := &Module{Name: moduleName(file), Path: file}
			for _, d := range strings.Fields(deps) {
				m.Deps = append(m.Deps, moduleName(d))
			}
			t.mods[m.Name] = m
		}
	} else {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !isModuleFile(d.Name()) {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			name := moduleName(rel)
			if _, dup := t.mods[name]; !dup {
				t.mods[name] = &Module{Name: name, Path: filepath.ToSlash(rel)}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("kernel modules: %w", err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			t.builtin[moduleName(l)] = true
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.alias")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "alias" && !strings.ContainsAny(f[1], "*?[") {
				t.alias[f[1]] = moduleName(f[2])
			}
		}
	}
	return t, nil
}

// Has says whether the tree has module name as a file.
func (t *ModuleTree) Has(name string) bool { return t.mods[moduleName(name)] != nil }

// Builtin says whether name is built into the kernel (modules.builtin).
func (t *ModuleTree) Builtin(name string) bool { return t.builtin[moduleName(name)] }

// Alias resolves a modules.alias name (fs-ext3, …) to a module name.
func (t *ModuleTree) Alias(alias string) string { return t.alias[alias] }

// deps returns m's dependencies: modules.dep's, else .modinfo's depends=.
func (t *ModuleTree) deps(m *Module) ([]string, error) {
	if t.fromDep || m.Deps != nil {
		return m.Deps, nil
	}
	info, err := readModinfo(filepath.Join(t.Dir, m.Path))
	if err != nil {
		return nil, err
	}
	m.Deps = []string{}
	for _, d := range strings.Split(info["depends"], ",") {
		if d != "" {
			m.Deps = append(m.Deps, moduleName(d))
		}
	}
	return m.Deps, nil
}

// readModinfo reads the key=value strings of a module's .modinfo section
// (include/linux/moduleparam.h MODULE_INFO: NUL-separated strings).
func readModinfo(path string) (map[string]string, error) {
	if !strings.HasSuffix(path, ".ko") {
		return nil, fmt.Errorf("%s: a compressed module needs modules.dep (run depmod)", path)
	}
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", path)
	}
	b, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: .modinfo: %w", path, err)
	}
	out := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			if _, dup := out[k]; !dup {
				out[k] = v
			}
		}
	}
	return out, nil
}

// Resolve returns the modules names need, dependencies first, each once:
// the order to load them in. Names built into the kernel are dropped.
func (t *ModuleTree) Resolve(names []string) ([]Module, error) {
	var out []Module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, from string) error
	visit = func(name, from string) error {
		name = moduleName(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("kernel modules: a dependency loop through %s", name)
		case 2:
			return nil
		}
		m := t.mods[name]
		if m == nil {
			if t.builtin[name] {
				state[name] = 2
				return nil
			}
			if from != "" {
				return fmt.Errorf("kernel modules: %s (needed by %s) is not in %s", name, from, t.Dir)
			}
			return fmt.Errorf("kernel modules: %s is not in %s", name, t.Dir)
		}
		state[name] = 1
		deps, err := t.deps(m)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		mm := *m
		if st, err := os.Stat(filepath.Join(t.Dir, m.Path)); err == nil {
			mm.Size = st.Size()
		}
		out = append(out, mm)
		return nil
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted) // a stable image whatever the discovery order
	for _, n := range sorted {
		if err := visit(n, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DeviceModules returns the modules of the drivers of a block device and
// of every device above it (the disk of a partition, its controller, the
// bus): the sysfs driver/module links of /sys/class/block/NAME's device
// and its parents, on the machine under root. Built-in drivers have no
// module link and are skipped (DeviceDrivers lists them).
func DeviceModules(root, name string) ([]string, error) {
	mods, _, err := DeviceDrivers(root, name)
	return mods, err
}

// DeviceDrivers is DeviceModules, with the names of the drivers built
// into the running kernel beside: a capture kernel of another release may
// have them as modules (driver names are module names, '-' read as '_').
func DeviceDrivers(root, name string) (modules, builtin []string, err error) {
	blk := filepath.Join(root, "sys/class/block", name)
	real, err := filepath.EvalSymlinks(blk)
	if err != nil {
		return nil, nil, fmt.Errorf("block device %s: %w", name, err)
	}
	if _, err := os.Stat(filepath.Join(real, "partition")); err == nil {
		real = filepath.Dir(real) // a partition: the disk holds the device link
	}
	dev, err := filepath.EvalSymlinks(filepath.Join(real, "device"))
	if err != nil {
		return nil, nil, nil // a virtual device (loop, ram, dm…): no driver
	}
	top := filepath.Join(root, "sys/devices")
	if t, err := filepath.EvalSymlinks(top); err == nil {
		top = t
	}
	seen := map[string]bool{}
	for d := dev; strings.HasPrefix(d, top+string(filepath.Separator)); d = filepath.Dir(d) {
		drv, err := os.Readlink(filepath.Join(d, "driver"))
		if err != nil {
			continue
		}
		if m, err := os.Readlink(filepath.Join(d, "driver", "module")); err == nil {
			if n := filepath.Base(m); !seen[n] {
				seen[n] = true
				modules = append(modules, n)
			}
		} else if n := moduleName(filepath.Base(drv)); !seen[n] {
			seen[n] = true
			builtin = append(builtin, n)
		}
	}
	return modules, builtin, nil
}
