package debuginfo

import (
	"errors"
	"sync"
)

// WithFallback wraps primary so that a type or name it does not have is
// looked for in more's Types, in order: a kernel's modules define types
// vmlinux does not (struct virtio_blk). more is called once, on the first
// miss, and may return nil; a call made while more runs (more itself
// looking up types) sees only primary.
func WithFallback(primary Types, more func() []Types) Types {
	return &fallbackTypes{Types: primary, more: more}
}

type fallbackTypes struct {
	Types
	more func() []Types

	once    sync.Once
	loading sync.Mutex // held while more runs
	running bool
	extra   []Types
}

// Unwrap is the primary Types.
func (f *fallbackTypes) Unwrap() Types { return f.Types }

func (f *fallbackTypes) others() []Types {
	f.loading.Lock()
	if f.running {
		f.loading.Unlock()
		return nil
	}
	f.loading.Unlock()
	f.once.Do(func() {
		f.loading.Lock()
		f.running = true
		f.loading.Unlock()
		f.extra = f.more()
		f.loading.Lock()
		f.running = false
		f.loading.Unlock()
	})
	return f.extra
}

func (f *fallbackTypes) try(first func(Types) (*Type, error)) (*Type, error) {
	ty, err := first(f.Types)
	var nf *NotFoundError
	if err == nil || !errors.As(err, &nf) {
		return ty, err
	}
	for _, t := range f.others() {
		if ty, err2 := first(t); err2 == nil {
			return ty, nil
		}
	}
	return nil, err
}

func (f *fallbackTypes) Struct(n string) (*Type, error) {
	return f.try(func(t Types) (*Type, error) { return t.Struct(n) })
}
func (f *fallbackTypes) Union(n string) (*Type, error) {
	return f.try(func(t Types) (*Type, error) { return t.Union(n) })
}
func (f *fallbackTypes) Enum(n string) (*Type, error) {
	return f.try(func(t Types) (*Type, error) { return t.Enum(n) })
}
func (f *fallbackTypes) Typedef(n string) (*Type, error) {
	return f.try(func(t Types) (*Type, error) { return t.Typedef(n) })
}
func (f *fallbackTypes) Named(n string) (*Type, error) {
	return f.try(func(t Types) (*Type, error) { return t.Named(n) })
}
func (f *fallbackTypes) Var(n string) (*Type, error) {
	return f.try(func(t Types) (*Type, error) { return t.Var(n) })
}
func (f *fallbackTypes) Func(n string) (*Type, error) {
	return f.try(func(t Types) (*Type, error) { return t.Func(n) })
}

// WithoutFallback returns t without the fallbacks WithFallback added.
func WithoutFallback(t Types) Types {
	for {
		f, ok := t.(*fallbackTypes)
		if !ok {
			return t
		}
		t = f.Types
	}
}

// BaseBTF returns the vmlinux BTF that t is or wraps, for loading a
// module's split BTF on top of it; nil when t is not BTF.
func BaseBTF(t Types) Types {
	for {
		switch w := t.(type) {
		case *btfTypes:
			return w
		case *wellKnownTypes:
			t = w.Types
		case *fallbackTypes:
			t = w.Types
		case *lazyTypes:
			var err error
			if t, err = w.get(); err != nil {
				return nil
			}
		default:
			return nil
		}
	}
}

// Lazy returns Types loaded by load on first use: a session that only
// resolves symbols never pays for parsing the kernel's BTF. A failed load
// is every lookup's error.
func Lazy(source string, load func() (Types, error)) Types {
	return &lazyTypes{source: source, load: load}
}

type lazyTypes struct {
	source string
	load   func() (Types, error)
	once   sync.Once
	t      Types
	err    error
}

func (l *lazyTypes) get() (Types, error) {
	l.once.Do(func() { l.t, l.err = l.load() })
	return l.t, l.err
}

func (l *lazyTypes) do(f func(Types) (*Type, error)) (*Type, error) {
	t, err := l.get()
	if err != nil {
		return nil, err
	}
	return f(t)
}

func (l *lazyTypes) Struct(n string) (*Type, error) {
	return l.do(func(t Types) (*Type, error) { return t.Struct(n) })
}
func (l *lazyTypes) Union(n string) (*Type, error) {
	return l.do(func(t Types) (*Type, error) { return t.Union(n) })
}
func (l *lazyTypes) Enum(n string) (*Type, error) {
	return l.do(func(t Types) (*Type, error) { return t.Enum(n) })
}
func (l *lazyTypes) Typedef(n string) (*Type, error) {
	return l.do(func(t Types) (*Type, error) { return t.Typedef(n) })
}
func (l *lazyTypes) Named(n string) (*Type, error) {
	return l.do(func(t Types) (*Type, error) { return t.Named(n) })
}
func (l *lazyTypes) Var(n string) (*Type, error) {
	return l.do(func(t Types) (*Type, error) { return t.Var(n) })
}
func (l *lazyTypes) Func(n string) (*Type, error) {
	return l.do(func(t Types) (*Type, error) { return t.Func(n) })
}

// Source is the loaded Types' (the promised one's before loading).
func (l *lazyTypes) Source() string {
	if t, err := l.get(); err == nil {
		return t.Source()
	}
	return l.source
}
