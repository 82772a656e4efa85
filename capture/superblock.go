package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// FSID is what a filesystem's superblock says of itself: the type, UUID
// and label that LABEL= and UUID= device names match.
type FSID struct {
	Type  string `json:"type"`
	UUID  string `json:"uuid"`
	Label string `json:"label,omitempty"`
}

// errNoFS is the error of a device with no superblock ReadFSID knows.
var errNoFS = errors.New("no ext2/3/4 or xfs superblock")

// ReadFSID reads the superblock of an ext2/3/4 or xfs filesystem from r
// (a block device or an image). It replaces udev's /dev/disk/by-uuid and
// by-label in a capture initramfs that has no udev.
func ReadFSID(r io.ReaderAt) (FSID, error) {
	// ext2/3/4: struct ext4_super_block at byte 1024 (fs/ext4/ext4.h):
	// s_magic 0xEF53 at 0x38, s_feature_compat at 0x5C,
	// s_feature_incompat at 0x60, s_uuid[16] at 0x68, s_volume_name[16]
	// at 0x78.
	var sb [256]byte
	if n, _ := r.ReadAt(sb[:], 1024); n == len(sb) && binary.LittleEndian.Uint16(sb[0x38:]) == 0xEF53 {
		typ := "ext2"
		compat := binary.LittleEndian.Uint32(sb[0x5C:])
		incompat := binary.LittleEndian.Uint32(sb[0x60:])
		rocompat := binary.LittleEndian.Uint32(sb[0x64:])
		switch {
		// INCOMPAT_EXTENTS (0x40), 64BIT (0x80), FLEX_BG (0x200) or
		// RO_COMPAT_HUGE_FILE/DIR_NLINK/EXTRA_ISIZE/METADATA_CSUM mean ext4.
		case incompat&0x2c0 != 0 || rocompat&0x478 != 0:
			typ = "ext4"
		case compat&0x4 != 0: // COMPAT_HAS_JOURNAL
			typ = "ext3"
		}
		return FSID{Type: typ, UUID: formatUUID(sb[0x68:0x78]), Label: cString(sb[0x78:0x88])}, nil
	}
	// xfs: struct xfs_dsb at byte 0 (fs/xfs/libxfs/xfs_format.h):
	// sb_magicnum "XFSB", sb_uuid[16] at 32, sb_fname[12] at 108.
	var xb [128]byte
	if n, _ := r.ReadAt(xb[:], 0); n == len(xb) && string(xb[:4]) == "XFSB" {
		return FSID{Type: "xfs", UUID: formatUUID(xb[32:48]), Label: cString(xb[108:120])}, nil
	}
	return FSID{}, errNoFS
}

func formatUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// ReadFSIDFile reads the superblock of the device or image at path.
func ReadFSIDFile(path string) (FSID, error) {
	f, err := os.Open(path)
	if err != nil {
		return FSID{}, err
	}
	defer f.Close()
	id, err := ReadFSID(f)
	if err != nil {
		return id, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

// BlockDevices lists the block devices of the machine under root, by
// name (vda, vda1, sda…), from /sys/class/block.
func BlockDevices(root string) []string {
	ents, _ := os.ReadDir(filepath.Join(root, "sys/class/block"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// FindDevice resolves a device spec of kdump.conf — /dev/NAME, LABEL=,
// UUID=, PARTUUID=, PARTLABEL= — to a /dev path on the machine under root.
// udev's /dev/disk/by-* links are used when they exist; without them (a
// capture initramfs has no udev) LABEL= and UUID= are matched against the
// superblock of each block device in /sys/class/block.
func FindDevice(root, spec string) (string, error) {
	if strings.HasPrefix(spec, "/dev/") {
		if _, err := os.Stat(filepath.Join(root, spec)); err != nil {
			return "", fmt.Errorf("device %s: %w", spec, err)
		}
		return spec, nil
	}
	key, val, ok := strings.Cut(spec, "=")
	byDir := map[string]string{"LABEL": "by-label", "UUID": "by-uuid", "PARTUUID": "by-partuuid", "PARTLABEL": "by-partlabel"}[key]
	if !ok || byDir == "" || val == "" {
		return "", fmt.Errorf("device %q: want /dev/NAME, LABEL=, UUID=, PARTUUID= or PARTLABEL=", spec)
	}
	link := filepath.Join(root, "dev/disk", byDir, val)
	if t, err := os.Readlink(link); err == nil {
		if !filepath.IsAbs(t) {
			t = filepath.Join("/dev/disk", byDir, t)
		}
		return filepath.Clean(t), nil
	}
	if key != "LABEL" && key != "UUID" {
		return "", fmt.Errorf("device %s: no /dev/disk/%s/%s (partition names need udev's links)", spec, byDir, val)
	}
	for _, name := range BlockDevices(root) {
		id, err := ReadFSIDFile(filepath.Join(root, "dev", name))
		if err != nil {
			continue
		}
		if key == "UUID" && strings.EqualFold(id.UUID, val) || key == "LABEL" && id.Label == val {
			return "/dev/" + name, nil
		}
	}
	return "", fmt.Errorf("device %s: no block device has it", spec)
}

// WaitDevice waits up to timeout for FindDevice to find spec: drivers
// probe disks asynchronously after their modules load.
func WaitDevice(root, spec string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		dev, err := FindDevice(root, spec)
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				err = fmt.Errorf("%w (waited %s)", err, timeout)
			}
			return dev, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
