//! careledger's copy of `uniffi-bindgen`, pinned to the uniffi version the
//! bindings crate uses (the generator and the scaffolding must match).
//! Run it through `bash bindings/generate.sh`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
