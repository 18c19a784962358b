//! The report's format: fixtures parse and serialize back, and every refusal names its
//! field.

mod errors;
mod golden;
mod limits;
mod privacy;
mod validate;
