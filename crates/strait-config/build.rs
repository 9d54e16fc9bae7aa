//! Generates the resource messages (`strait.config.v1`) with the protoc that ships inside
//! `protoc-bin-vendored` (a `PROTOC` in the environment still wins).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    match std::env::var_os("PROTOC") {
        Some(p) => config.protoc_executable(p),
        None => config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
    };
    config.compile_protos(&["proto/strait/config/v1/config.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
