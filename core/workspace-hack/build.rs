// Without a build script cargo would ignore the [build-dependencies] of
// Cargo.toml, which unify the features of build scripts' and proc-macros'
// dependencies.
fn main() {}
