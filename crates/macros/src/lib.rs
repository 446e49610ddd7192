//! Procedural macros for vgi-rpc.
//!
//! Users reach these through the `vgirpc` crate, which re-exports them:
//! `#[vgirpc::service]` turns a trait into a served (and callable) service,
//! `#[derive(ArrowStruct)]` maps a struct to an Arrow struct / IPC-in-binary
//! value and `#[derive(ArrowEnum)]` maps a unit enum to a dictionary-encoded
//! string carrying the variant name.

#![warn(missing_docs)]

use proc_macro::TokenStream;

mod derive_enum;
mod derive_struct;
mod service;
mod stream_state;

/// Derives `ArrowValue` and `ArrowStruct` for a struct with named fields.
#[proc_macro_derive(ArrowStruct, attributes(arrow))]
pub fn derive_arrow_struct(input: TokenStream) -> TokenStream {
    derive_struct::expand(syn::parse_macro_input!(input as syn::DeriveInput))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `ArrowValue` for a fieldless enum, carried on the wire by variant name.
#[proc_macro_derive(ArrowEnum, attributes(arrow))]
pub fn derive_arrow_enum(input: TokenStream) -> TokenStream {
    derive_enum::expand(syn::parse_macro_input!(input as syn::DeriveInput))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Turns a trait into a vgi-rpc service: schemas, dispatch, `__describe__`
/// rows and typed clients, all derived from the trait's methods. Used as
/// `#[vgirpc::service]`, whose documentation is the full reference.
#[proc_macro_attribute]
pub fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    service::expand(
        args.into(),
        syn::parse_macro_input!(input as syn::ItemTrait),
    )
    .unwrap_or_else(syn::Error::into_compile_error)
    .into()
}

/// Makes a stream state resumable on stateless transports such as HTTP.
///
/// Put it on a state's `impl ProducerState for T` or `impl ExchangeState for
/// T` block (or `AsyncProducerState` / `AsyncExchangeState`); `T` must derive `ArrowStruct`, which is how the state travels
/// inside continuation tokens. The state is registered under
/// `module_path!()::T`, or `#[stream_state(key = "...")]`.
#[proc_macro_attribute]
pub fn stream_state(args: TokenStream, input: TokenStream) -> TokenStream {
    stream_state::expand(args.into(), syn::parse_macro_input!(input as syn::ItemImpl))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
