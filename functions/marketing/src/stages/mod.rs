//! The marketing pipeline's stages, one Lambda function each.

pub mod generate;
pub mod plan;
pub mod report;
pub mod unify;
