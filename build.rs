use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc keeps the build free of any system protoc.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let well_known = protoc_bin_vendored::include_path()?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("payments_descriptor.bin"))
        // prost with small buffers: see src/api/codec.rs.
        .codec_path("crate::api::codec::SmallBufferCodec")
        // These messages carry phone numbers: their Debug is written by hand, masked.
        .skip_debug([
            "payments.v1.CreatePayinRequest",
            "payments.v1.Customer",
            "payments.v1.Transaction",
            "payments.v1.Refund",
        ])
        .compile_protos(
            &[PathBuf::from("proto/payments/v1/payments.proto")],
            &[PathBuf::from("proto"), well_known],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
