//! Stage metrics for CloudWatch: the EMF document format ([`emf`]), what one invocation
//! measured ([`invocation`]) and how stages record it without knowing who listens
//! ([`recorder`]). The Lambda wrapper (lambda-support) writes one EMF line per invocation.

pub mod emf;
pub mod invocation;
pub mod recorder;

pub use emf::{EmfError, NAMESPACE};
pub use invocation::{names, Invocation, StageFigures};
pub use recorder::{measure, record_run, record_stage};
