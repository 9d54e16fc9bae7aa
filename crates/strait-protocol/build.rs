//! Generates the protocol types with the protoc that ships inside `protoc-bin-vendored`, so no
//! system protoc is needed (a `PROTOC` in the environment still wins). The resource messages
//! (`strait.config.v1`) are generated once, in `strait-config`, and referred to from here.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    match std::env::var_os("PROTOC") {
        Some(p) => config.protoc_executable(p),
        None => config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
    };
    config.extern_path(".strait.config.v1", "::strait_config::proto");
    tonic_prost_build::configure().compile_with_config(
        config,
        &["proto/strait.proto"],
        &["proto", "../strait-config/proto"],
    )?;
    println!("cargo:rerun-if-changed=proto/strait.proto");
    println!("cargo:rerun-if-changed=../strait-config/proto");
    Ok(())
}
