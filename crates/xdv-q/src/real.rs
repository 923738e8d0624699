//! The floating-point abstraction: every engine is generic over [`Real`], implemented for `f32`
//! (amplitudes in complex64) and `f64` (complex128). Gate matrices are built in `f64` and converted
//! once per gate, so both precisions see the same matrices rounded once.

use num_complex::Complex;

/// A floating-point type an engine can run in.
pub trait Real:
    num_traits::Float
    + num_traits::FloatConst
    + Default
    + Send
    + Sync
    + std::fmt::Debug
    + std::iter::Sum
    + 'static
{
    /// The precision's name, as the CLI spells it (`f32`, `f64`).
    const NAME: &'static str;
    /// Converts from `f64`, rounding to nearest.
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// Converts a complex `f64` value.
    fn c(z: Complex<f64>) -> Complex<Self> {
        Complex::new(Self::from_f64(z.re), Self::from_f64(z.im))
    }
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}
