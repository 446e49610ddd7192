//! `#[stream_state]`: makes a producer or exchange state resumable on
//! stateless transports.
//!
//! Placed on `impl ProducerState for T` or `impl ExchangeState for T`, or
//! their async forms `AsyncProducerState` / `AsyncExchangeState` (where
//! `T` derives `ArrowStruct`), it adds the trait's `save_state` method and
//! submits a decoder for `T` to the process-wide registry, keyed by
//! `module_path!()::T` unless `key = "..."` says otherwise. Every process
//! built from the same code registers the same keys, so any of them can
//! resume a stream another one saved.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{ItemImpl, LitStr, Path, Type};

use crate::derive_struct::parse_crate_path;

enum Kind {
    Producer,
    Exchange,
    AsyncProducer,
    AsyncExchange,
}

pub(crate) fn expand(args: TokenStream, mut item: ItemImpl) -> syn::Result<TokenStream> {
    let mut key: Option<LitStr> = None;
    let mut krate: Path = syn::parse_quote!(::vgirpc);
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate = parse_crate_path(&meta)?;
            Ok(())
        } else if meta.path.is_ident("key") {
            let lit: LitStr = meta.value()?.parse()?;
            if lit.value().is_empty() {
                return Err(syn::Error::new(lit.span(), "the key must not be empty"));
            }
            key = Some(lit);
            Ok(())
        } else {
            Err(meta.error(
                "unknown #[stream_state] argument; expected `key = \"...\"` or `crate = \"path::to::vgirpc\"`",
            ))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;

    let misplaced = || {
        syn::Error::new(
            item.impl_token.span,
            "#[stream_state] goes on an `impl ProducerState for T` or `impl ExchangeState for T` block \
             (or their `Async` forms)",
        )
    };
    let kind = match &item.trait_ {
        Some((None, path, _)) => match path.segments.last() {
            Some(last) if last.ident == "ProducerState" => Kind::Producer,
            Some(last) if last.ident == "ExchangeState" => Kind::Exchange,
            Some(last) if last.ident == "AsyncProducerState" => Kind::AsyncProducer,
            Some(last) if last.ident == "AsyncExchangeState" => Kind::AsyncExchange,
            _ => return Err(misplaced()),
        },
        _ => return Err(misplaced()),
    };
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "#[stream_state] needs a concrete state type: a generic impl cannot be registered",
        ));
    }
    let self_ty = item.self_ty.as_ref().clone();
    let Type::Path(path) = &self_ty else {
        return Err(syn::Error::new(
            self_ty.span(),
            "#[stream_state] needs a named state type",
        ));
    };
    let type_name = path
        .path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .ok_or_else(|| syn::Error::new(path.span(), "empty type path"))?;
    let key = match key {
        Some(lit) => quote!(#lit),
        None => quote!(::core::concat!(::core::module_path!(), "::", #type_name)),
    };

    let private = quote!(#krate::__private);
    item.items.push(syn::parse_quote! {
        fn save_state(
            &self,
        ) -> ::core::result::Result<#private::SavedState, #krate::RpcError> {
            #private::save_state::<#self_ty>(#key, self)
        }
    });
    let register = match kind {
        Kind::Producer => quote!(producer),
        Kind::Exchange => quote!(exchange),
        Kind::AsyncProducer => quote!(async_producer),
        Kind::AsyncExchange => quote!(async_exchange),
    };
    Ok(quote! {
        #item

        #private::inventory::submit! {
            #private::StateRegistration::#register::<#self_ty>(#key)
        }
    })
}
