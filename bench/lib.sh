# Shared by the bench scripts.

# The directory cargo builds into (honours CARGO_TARGET_DIR and cargo's config).
target_dir() {
  cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}
