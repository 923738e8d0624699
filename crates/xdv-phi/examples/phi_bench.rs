//! The XDV side of `cargo xtask bench phi`: one measurement per process, printed as one JSON
//! line.
//!
//! - `phi_bench write N SEED FILE`: writes the Haar-random N × N unitary of `SEED` as a JSON
//!   matrix (rows of `[re, im]`), the input every side of the benchmark decomposes;
//! - `phi_bench decompose FILE`: reads the matrix and times one Clements decomposition (with its
//!   unitarity check) → `{"decompose_s", "reconstruction_error"}`;
//! - `phi_bench mesh N REPS`: compiles the Haar unitary of seed N into a mesh and applies it to a
//!   field MZI by MZI, REPS times → `{"ns_per_mzi", "mzis"}` (the output phases count as
//!   elements applied but not as MZIs).

use std::time::Instant;
use xdv_phi::haar::haar_unitary;
use xdv_phi::{decompose, Matrix, C64};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["write", n, seed, file] => {
            let u = haar_unitary(n.parse()?, seed.parse()?);
            std::fs::write(file, u.to_json().to_string())?;
        }
        ["decompose", file] => {
            let text = std::fs::read_to_string(file)?;
            let u = Matrix::from_json(&text, file)?;
            let t = Instant::now();
            let d = decompose(&u)?;
            let s = t.elapsed().as_secs_f64();
            let err = d.reconstruct().max_abs_diff(&u);
            println!("{{\"decompose_s\":{s},\"reconstruction_error\":{err}}}");
        }
        ["mesh", n, reps] => {
            let n: usize = n.parse()?;
            let reps: usize = reps.parse()?;
            let mesh = decompose(&haar_unitary(n, n as u64))?.mesh();
            let mzis = n * (n - 1) / 2;
            let mut field: Vec<C64> = (0..n)
                .map(|k| C64::new(1.0 / (n as f64).sqrt(), k as f64 * 1e-3))
                .collect();
            let t = Instant::now();
            for _ in 0..reps {
                mesh.apply(&mut field)?;
            }
            let s = t.elapsed().as_secs_f64();
            let power: f64 = field.iter().map(|a| a.norm_sqr()).sum();
            println!(
                "{{\"ns_per_mzi\":{},\"mzis\":{mzis},\"power\":{power}}}",
                s / (reps * mzis) as f64 * 1e9
            );
        }
        _ => {
            eprintln!("usage: phi_bench write N SEED FILE | decompose FILE | mesh N REPS");
            std::process::exit(2);
        }
    }
    Ok(())
}
