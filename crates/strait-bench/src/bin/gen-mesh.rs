//! `gen-mesh DIR [RESOURCES] [CLUSTERS]`: writes a benchmark mesh directory.

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: gen-mesh DIR [RESOURCES=10000] [CLUSTERS=3]"))?;
    let resources: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let clusters: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let n = strait_bench::write_mesh(std::path::Path::new(&dir), resources, clusters)?;
    eprintln!("wrote {n} resources over {clusters} clusters to {dir}");
    Ok(())
}
