Vigil's shared contracts and plumbing.
