//! Config files and `EMQX_*` variables as EMQX reads them, and every bad input refused
//! naming its key and where it was set.

mod corpus;
mod env;
mod file;
mod syntax;
mod values;
