"""vrrp-lab's test suite: a package, so modules in different directories may share a name."""
