//! `#[service]`: parses a trait of RPC methods and generates its dispatch.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Ident, ItemTrait, Path, TraitItem};

use crate::derive_struct::parse_crate_path;

mod signature;

use signature::{Method, Returns, parse_method};

pub(crate) fn expand(args: TokenStream, mut item: ItemTrait) -> syn::Result<TokenStream> {
    let mut krate: Path = syn::parse_quote!(::vgirpc);
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate = parse_crate_path(&meta)?;
            Ok(())
        } else {
            Err(meta.error("unknown #[service] argument; expected `crate = \"path::to::vgirpc\"`"))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;
    let mut methods = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let mut has_start_hook = false;
    for trait_item in &mut item.items {
        let TraitItem::Fn(func) = trait_item else {
            continue;
        };
        if func.sig.ident == "on_serve_start" {
            has_start_hook = true;
            continue;
        }
        match parse_method(func) {
            Ok(method) => methods.push(method),
            Err(err) => match &mut errors {
                Some(all) => all.combine(err),
                None => errors = Some(err),
            },
        }
    }
    if let Some(errors) = errors {
        return Err(errors);
    }

    let private = quote!(#krate::__private);
    if !has_start_hook {
        item.items.push(syn::parse_quote! {
            /// Fired once when serving starts on a transport, before any request.
            fn on_serve_start(
                &self,
                _kind: #krate::TransportKind,
            ) -> ::core::result::Result<(), #krate::RpcError> {
                ::core::result::Result::Ok(())
            }
        });
    }
    item.supertraits
        .push(syn::parse_quote!(::core::marker::Send));
    item.supertraits
        .push(syn::parse_quote!(::core::marker::Sync));
    item.supertraits.push(syn::parse_quote!('static));

    let trait_ident = &item.ident;
    let vis = &item.vis;
    let protocol_name = trait_ident.to_string();
    let server_ident = format_ident!("{}Server", trait_ident);

    let descriptions = methods
        .iter()
        .enumerate()
        .map(|(index, m)| describe(&item, index, m, &private));
    let default_fns = methods.iter().enumerate().flat_map(|(index, m)| {
        m.params
            .iter()
            .enumerate()
            .filter_map(move |(position, p)| {
                let expr = p.default.as_ref()?;
                let ident = default_fn(index, position);
                let ty = &p.ty;
                let doc = format!(
                    "The `#[default(..)]` of parameter `{}` of `{}`.",
                    p.wire_name, m.name
                );
                // One function serves both the dispatch and the description, so
                // a default that does not convert is reported once.
                Some(quote! {
                    #[doc = #doc]
                    fn #ident() -> #ty {
                        ::core::convert::Into::into(#expr)
                    }
                })
            })
    });
    let arms = methods.iter().enumerate().map(|(index, m)| {
        let method_ident = &m.ident;
        let name = &m.name;
        let decode = m.params.iter().enumerate().map(|(position, p)| {
            let ident = &p.ident;
            let ty = &p.ty;
            let wire_name = &p.wire_name;
            let default = match &p.default {
                Some(_) => {
                    let make = default_fn(index, position);
                    quote!(::core::option::Option::Some(Self::#make as fn() -> #ty))
                }
                None => quote!(::core::option::Option::None),
            };
            quote! {
                let #ident: #ty = #private::param::<#ty>(params, #name, #wire_name, #default)?;
            }
        });
        let mut call_args: Vec<TokenStream> = m
            .params
            .iter()
            .map(|p| {
                let ident = &p.ident;
                quote!(#ident)
            })
            .collect();
        if let Some(position) = m.ctx_position {
            call_args.insert(position, quote!(ctx));
        }
        let awaited = if m.is_async { quote!(.await) } else { quote!() };
        // The autoref picks the `anyhow::Error` conversion when the error
        // is one, and `Into<RpcError>` for every other error type.
        let call = quote! {
            match self.inner.#method_ident(#(#call_args),*)#awaited {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(err) => {
                    use #private::{AnyhowIntoRpcError as _, IntoRpcError as _};
                    return ::core::result::Result::Err(
                        (&&#private::MethodError::new(err)).to_rpc_error(),
                    );
                }
            }
        };
        let finish = match &m.returns {
            Returns::Nothing => quote! {
                let () = #call;
                ::core::result::Result::Ok(#krate::Outcome::Unary(#private::void_batch()))
            },
            Returns::Value(_) => quote! {
                let value = #call;
                ::core::result::Result::Ok(#krate::Outcome::Unary(#private::result_batch(&value)?))
            },
            Returns::Stream { header: None } => quote! {
                let stream = #call;
                ::core::result::Result::Ok(#krate::Outcome::Stream(#private::erase_stream(stream)?))
            },
            Returns::Stream { header: Some(_) } => quote! {
                let stream = #call;
                ::core::result::Result::Ok(#krate::Outcome::Stream(
                    #private::erase_stream_with_header(stream)?,
                ))
            },
        };
        let result = quote!(::core::result::Result<#krate::Outcome, #krate::RpcError>);
        if !m.is_async {
            return quote! {
                #index => #krate::MaybeReady::Ready((|| -> #result {
                    #(#decode)*
                    #finish
                })()),
            };
        }
        // Parameters are decoded before the future exists, so a bad request
        // fails at once and the future owns plain values.
        let idents: Vec<&Ident> = m.params.iter().map(|p| &p.ident).collect();
        let types = m.params.iter().map(|p| &p.ty);
        quote! {
            #index => {
                let decoded = (|| -> ::core::result::Result<(#(#types,)*), #krate::RpcError> {
                    #(#decode)*
                    ::core::result::Result::Ok((#(#idents,)*))
                })();
                match decoded {
                    ::core::result::Result::Err(err) => {
                        #krate::MaybeReady::Ready(::core::result::Result::Err(err))
                    }
                    ::core::result::Result::Ok((#(#idents,)*)) => {
                        #krate::MaybeReady::Pending(::std::boxed::Box::pin(async move {
                            #finish
                        }))
                    }
                }
            }
        }
    });

    let server_doc = format!(
        "Serves an implementation of [`{trait_ident}`]: dispatch, schemas and `__describe__`."
    );
    let client = client(&item, &methods, &krate);
    let async_client = async_client(&item, &methods, &krate);
    Ok(quote! {
        #item

        #krate::__with_client! {
            #client

            #async_client
        }

        #[doc = #server_doc]
        #vis struct #server_ident<T> {
            inner: T,
            methods: ::std::vec::Vec<#private::MethodDescription>,
        }

        impl<T: #trait_ident> #server_ident<T> {
            /// Wraps an implementation for serving.
            #vis fn new(inner: T) -> Self {
                Self {
                    inner,
                    methods: ::std::vec![#(#descriptions),*],
                }
            }

            /// The wrapped implementation.
            #vis fn get_ref(&self) -> &T {
                &self.inner
            }

            #(#default_fns)*
        }

        impl<T> ::core::fmt::Debug for #server_ident<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#server_ident))
                    .field("methods", &self.methods.len())
                    .finish_non_exhaustive()
            }
        }

        impl<T: #trait_ident> #krate::Service for #server_ident<T> {
            fn protocol_name(&self) -> &str {
                #protocol_name
            }

            fn methods(&self) -> &[#private::MethodDescription] {
                &self.methods
            }

            fn call<'a>(
                &'a self,
                index: usize,
                params: &'a #krate::arrow::array::RecordBatch,
                ctx: &'a #krate::CallContext,
            ) -> #krate::MaybeReady<'a, ::core::result::Result<#krate::Outcome, #krate::RpcError>> {
                let _ = (&params, &ctx);
                match index {
                    #(#arms)*
                    _ => #krate::MaybeReady::Ready(::core::result::Result::Err(
                        #krate::RpcError::runtime_error("method index out of range"),
                    )),
                }
            }

            fn on_serve_start(
                &self,
                kind: #krate::TransportKind,
            ) -> ::core::result::Result<(), #krate::RpcError> {
                #trait_ident::on_serve_start(&self.inner, kind)
            }
        }
    })
}

/// The typed `<Trait>Client`: one method per RPC over the dynamic client
/// of `vgirpc-client`, encoding parameters and decoding results with the
/// same `ArrowValue` mapping the server uses.
fn client(item: &ItemTrait, methods: &[Method], krate: &Path) -> TokenStream {
    let client_crate = quote!(#krate::client);
    let private = quote!(#client_crate::__private);
    let trait_ident = &item.ident;
    let vis = &item.vis;
    let client_ident = format_ident!("{}Client", trait_ident);
    let error = quote!(#client_crate::ClientError);

    let calls = methods.iter().map(|m| {
        let ident = &m.ident;
        let name = &m.name;
        let docs = method_docs(item, ident);
        let args = m.params.iter().map(|p| {
            let ident = &p.ident;
            let ty = &p.ty;
            quote!(#ident: #ty)
        });
        let columns = m.params.iter().map(|p| {
            let ident = &p.ident;
            let ty = &p.ty;
            let wire_name = &p.wire_name;
            quote!(#private::param::<#ty>(METHOD, #wire_name, &#ident)?)
        });
        let (returns, finish) = match &m.returns {
            Returns::Nothing => (
                quote!(()),
                quote!(#private::unary_void(METHOD, self.inner.call(METHOD, &params)?)),
            ),
            Returns::Value(ty) => (
                quote!(#ty),
                quote!(#private::unary_result::<#ty>(METHOD, self.inner.call(METHOD, &params)?)),
            ),
            Returns::Stream { header: None } => (
                quote!(#client_crate::TypedStream<'_, T>),
                quote! {
                    ::core::result::Result::Ok(#private::untyped(self.inner.stream(METHOD, &params)?))
                },
            ),
            Returns::Stream { header: Some(h) } => (
                quote!(#client_crate::TypedStream<'_, T, #h>),
                quote! {
                    #private::typed_header::<T, #h>(
                        METHOD,
                        self.inner.stream_with_header(METHOD, &params)?,
                    )
                },
            ),
        };
        quote! {
            #(#docs)*
            #vis fn #ident(
                &mut self,
                #(#args),*
            ) -> ::core::result::Result<#returns, #error> {
                const METHOD: &str = #name;
                let params = #private::params(METHOD, ::std::vec![#(#columns),*])?;
                #finish
            }
        }
    });

    let client_doc = format!(
        "Typed client for [`{trait_ident}`]: one method per RPC, taking and returning Rust \
         types.\n\n\
         Unary methods return their result; stream methods return a \
         [`TypedStream`]({}::client::TypedStream) with the decoded header. Every \
         parameter is sent, including those the trait gives a `#[default(..)]`: the \
         defaults only fill in for clients that omit a parameter.",
        path_text(krate)
    );
    quote! {
        #[doc = #client_doc]
        #vis struct #client_ident<
            T: #client_crate::Transport = #client_crate::SubprocessTransport,
        > {
            inner: #client_crate::Client<T>,
        }

        impl<T: #client_crate::Transport> ::core::fmt::Debug for #client_ident<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#client_ident))
                    .finish_non_exhaustive()
            }
        }

        impl<T: #client_crate::Transport> #client_ident<T> {
            /// Wraps a dynamic client connected to a server of this service.
            #vis fn new(client: #client_crate::Client<T>) -> Self {
                Self { inner: client }
            }

            /// The dynamic client, for calls by name and the log callback.
            #vis fn dynamic(&mut self) -> &mut #client_crate::Client<T> {
                &mut self.inner
            }

            /// Gives back the dynamic client (e.g. to close it).
            #vis fn into_dynamic(self) -> #client_crate::Client<T> {
                self.inner
            }

            #(#calls)*
        }

        impl<T: #client_crate::Transport> ::core::convert::AsRef<#client_crate::Client<T>>
            for #client_ident<T>
        {
            fn as_ref(&self) -> &#client_crate::Client<T> {
                &self.inner
            }
        }

        // Lets scopes over a client (an HTTP sticky session) hold the typed
        // client and still reach the dynamic one underneath.
        impl<T: #client_crate::Transport> ::core::convert::AsMut<#client_crate::Client<T>>
            for #client_ident<T>
        {
            fn as_mut(&mut self) -> &mut #client_crate::Client<T> {
                &mut self.inner
            }
        }
    }
}

/// The typed `<Trait>AsyncClient`: the same methods as `<Trait>Client`,
/// async and taking `&self`, over `vgirpc_client::AsyncClient`.
fn async_client(item: &ItemTrait, methods: &[Method], krate: &Path) -> TokenStream {
    let client_crate = quote!(#krate::client);
    let private = quote!(#client_crate::__private);
    let trait_ident = &item.ident;
    let vis = &item.vis;
    let client_ident = format_ident!("{}AsyncClient", trait_ident);
    let error = quote!(#client_crate::ClientError);

    let calls = methods.iter().map(|m| {
        let ident = &m.ident;
        let name = &m.name;
        let docs = method_docs(item, ident);
        let args = m.params.iter().map(|p| {
            let ident = &p.ident;
            let ty = &p.ty;
            quote!(#ident: #ty)
        });
        let columns = m.params.iter().map(|p| {
            let ident = &p.ident;
            let ty = &p.ty;
            let wire_name = &p.wire_name;
            quote!(#private::param::<#ty>(METHOD, #wire_name, &#ident)?)
        });
        let (returns, finish) = match &m.returns {
            Returns::Nothing => (
                quote!(()),
                quote!(#private::unary_void(METHOD, self.inner.call(METHOD, &params).await?)),
            ),
            Returns::Value(ty) => (
                quote!(#ty),
                quote!(#private::unary_result::<#ty>(METHOD, self.inner.call(METHOD, &params).await?)),
            ),
            Returns::Stream { header: None } => (
                quote!(#client_crate::AsyncTypedStream),
                quote! {
                    ::core::result::Result::Ok(#private::async_untyped(
                        self.inner.stream(METHOD, &params).await?,
                    ))
                },
            ),
            Returns::Stream { header: Some(h) } => (
                quote!(#client_crate::AsyncTypedStream<#h>),
                quote! {
                    #private::async_typed_header::<#h>(
                        METHOD,
                        self.inner.stream_with_header(METHOD, &params).await?,
                    )
                },
            ),
        };
        quote! {
            #(#docs)*
            #vis async fn #ident(
                &self,
                #(#args),*
            ) -> ::core::result::Result<#returns, #error> {
                const METHOD: &str = #name;
                let params = #private::params(METHOD, ::std::vec![#(#columns),*])?;
                #finish
            }
        }
    });

    let client_doc = format!(
        "Async typed client for [`{trait_ident}`]: one `async` method per RPC, taking `&self`, \
         so clones of one client serve many tasks at once (see \
         [`AsyncClient`]({}::client::AsyncClient) for how each transport runs them).",
        path_text(krate)
    );
    quote! {
        #[doc = #client_doc]
        #[derive(Clone, Debug)]
        #vis struct #client_ident {
            inner: #client_crate::AsyncClient,
        }

        impl #client_ident {
            /// Wraps an async client connected to a server of this service.
            #vis fn new(client: #client_crate::AsyncClient) -> Self {
                Self { inner: client }
            }

            /// The dynamic async client, for calls by name.
            #vis fn dynamic(&self) -> &#client_crate::AsyncClient {
                &self.inner
            }

            #(#calls)*
        }
    }
}

/// The doc comments of trait method `ident`, for its client counterpart.
fn method_docs<'a>(item: &'a ItemTrait, ident: &Ident) -> Vec<&'a syn::Attribute> {
    item.items
        .iter()
        .find_map(|trait_item| match trait_item {
            TraitItem::Fn(func) if func.sig.ident == *ident => Some(&func.attrs),
            _ => None,
        })
        .map(|attrs| attrs.iter().filter(|a| a.path().is_ident("doc")).collect())
        .unwrap_or_default()
}

/// The function that makes the default of parameter `position` of method
/// `index`; numbered rather than named after them, which could collide.
fn default_fn(index: usize, position: usize) -> Ident {
    format_ident!("__vgirpc_default_{}_{}", index, position)
}

fn describe(item: &ItemTrait, index: usize, m: &Method, private: &TokenStream) -> TokenStream {
    let name = &m.name;
    let docs = method_docs(item, &m.ident)
        .into_iter()
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(doc) => Some(&doc.value),
            _ => None,
        });
    let defaults = m.params.iter().enumerate().filter_map(|(position, p)| {
        let expr = p.default.as_ref()?;
        let ty = &p.ty;
        let wire_name = &p.wire_name;
        let make = default_fn(index, position);
        let written = quote!(#expr).to_string();
        Some(quote! {
            (#wire_name, #private::default_text::<#ty>(Self::#make, #written))
        })
    });
    let fields = m.params.iter().map(|p| {
        let ty = &p.ty;
        let wire_name = &p.wire_name;
        quote!(#private::param_field::<#ty>(#wire_name))
    });
    let embedded = m.params.iter().map(|p| {
        let ty = &p.ty;
        let wire_name = &p.wire_name;
        quote!((#wire_name, #private::embedded_schema::<#ty>()))
    });
    let (method_type, has_return, result_schema, header_schema) = match &m.returns {
        Returns::Nothing => (
            quote!(Unary),
            false,
            quote!(#private::empty_schema()),
            quote!(::core::option::Option::None),
        ),
        Returns::Value(ty) => (
            quote!(Unary),
            true,
            quote!(#private::result_schema::<#ty>()),
            quote!(::core::option::Option::None),
        ),
        Returns::Stream { header } => (
            quote!(Stream),
            false,
            quote!(#private::empty_schema()),
            match header {
                Some(h) => quote!(::core::option::Option::Some(#private::header_schema::<#h>())),
                None => quote!(::core::option::Option::None),
            },
        ),
    };
    quote! {
        #private::MethodDescription {
            name: <::std::string::String as ::core::convert::From<&str>>::from(#name),
            method_type: #private::MethodType::#method_type,
            has_return: #has_return,
            params_schema: #private::schema(::std::vec![#(#fields),*]),
            result_schema: #result_schema,
            header_schema: #header_schema,
            is_exchange: ::core::option::Option::None,
            embedded_params: #private::embedded_params(::std::vec![#(#embedded),*]),
            doc: #private::method_doc(&[#(#docs),*]),
            param_defaults: #private::param_defaults(::std::vec![#(#defaults),*]),
        }
    }
}

/// `path` as written in a doc link.
fn path_text(path: &Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}
