//! Generates the protocol types with the protoc that ships inside `protoc-bin-vendored`, so no
//! system protoc is needed (a `PROTOC` in the environment still wins).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    match std::env::var_os("PROTOC") {
        Some(p) => config.protoc_executable(p),
        None => config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
    };
    tonic_prost_build::configure().compile_with_config(
        config,
        &["proto/strait.proto"],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed=proto/strait.proto");
    Ok(())
}
