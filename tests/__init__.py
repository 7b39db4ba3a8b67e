"""vrrp-lab's own test suite (a package, so modules in different directories may share a basename)."""
