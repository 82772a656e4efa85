// Package packaging holds what installs salvage as a service: the
// systemd unit salvage-kdump.service, the default /etc/salvage/kdump.conf,
// and build-deb.sh, which makes the Debian package
// (`make package`). It has no Go code: its tests build the package and
// check it.
package packaging
