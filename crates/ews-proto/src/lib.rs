//! The ground floor of ews-conformance, shared by the harness and the
//! reference server: XML reading and writing with the path language
//! (`xml`), the EWS notification vocabulary and structural grammar (`ews`),
//! and the NTLM messages both sides speak (`ntlm`). It imports nothing of
//! either half.

pub mod ews;
pub mod ntlm;
pub mod xml;
