//! App manifests (DESIGN.md §5): parsing and validation.
