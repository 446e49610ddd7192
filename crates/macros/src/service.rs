//! `#[service]`: parses a trait of RPC methods and generates its dispatch.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericArgument, Ident, ItemTrait, Pat, Path, PathArguments, ReturnType,
    TraitItem, TraitItemFn, Type,
};

use crate::derive_struct::parse_crate_path;

/// What a method returns once its `Result` is unwrapped.
enum Returns {
    Nothing,
    Value(Type),
    Stream { header: Option<Type> },
}

struct Param {
    ident: Ident,
    wire_name: String,
    ty: Type,
    default: Option<Expr>,
}

struct Method {
    ident: Ident,
    name: String,
    params: Vec<Param>,
    ctx_position: Option<usize>,
    returns: Returns,
    is_async: bool,
}

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

    let descriptions = methods.iter().map(|m| describe(m, &private));
    let arms = methods.iter().enumerate().map(|(index, m)| {
        let method_ident = &m.ident;
        let name = &m.name;
        let decode = m.params.iter().map(|p| {
            let ident = &p.ident;
            let ty = &p.ty;
            let wire_name = &p.wire_name;
            let default = match &p.default {
                Some(expr) => quote! {
                    ::core::option::Option::Some(
                        (|| -> #ty { ::core::convert::Into::into(#expr) }) as fn() -> #ty
                    )
                },
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

fn describe(m: &Method, private: &TokenStream) -> TokenStream {
    let name = &m.name;
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
        }
    }
}

fn parse_method(func: &mut TraitItemFn) -> syn::Result<Method> {
    let sig = &mut func.sig;
    if func.default.is_some() {
        return Err(syn::Error::new(
            sig.ident.span(),
            "service methods are declared without a body",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "service methods cannot be generic",
        ));
    }
    let mut inputs = sig.inputs.iter_mut();
    match inputs.next() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_some() && receiver.mutability.is_none() => {}
        _ => {
            return Err(syn::Error::new(
                sig.ident.span(),
                "service methods take `&self` first",
            ));
        }
    }
    let mut params = Vec::new();
    let mut ctx_position = None;
    let mut type_errors: Option<syn::Error> = None;
    for (position, input) in inputs.enumerate() {
        let FnArg::Typed(typed) = input else {
            return Err(syn::Error::new(input.span(), "unexpected receiver"));
        };
        let default = take_default(&mut typed.attrs)?;
        if is_context(&typed.ty) {
            if default.is_some() {
                return Err(syn::Error::new(
                    typed.span(),
                    "the context takes no default",
                ));
            }
            ctx_position = Some(position);
            continue;
        }
        let Pat::Ident(pat) = typed.pat.as_ref() else {
            return Err(syn::Error::new(
                typed.pat.span(),
                "parameters must be plain names: the name is the Arrow column name",
            ));
        };
        if let Err(err) = check_wire_type(&typed.ty) {
            match &mut type_errors {
                Some(all) => all.combine(err),
                None => type_errors = Some(err),
            }
        }
        let ident = pat.ident.clone();
        params.push(Param {
            wire_name: ident.to_string().trim_start_matches("r#").to_owned(),
            ident,
            ty: (*typed.ty).clone(),
            default,
        });
    }
    let returns = parse_return(&sig.output);
    let returns = match (type_errors, returns) {
        (None, returns) => returns?,
        (Some(errors), Ok(_)) => return Err(errors),
        (Some(mut errors), Err(err)) => {
            errors.combine(err);
            return Err(errors);
        }
    };
    let is_async = sig.asyncness.take().is_some();
    if is_async {
        // A `Send` future lets any transport await the method on any
        // runtime thread; implementations still write `async fn`.
        let output = match &sig.output {
            ReturnType::Type(_, ty) => ty.clone(),
            ReturnType::Default => unreachable!("parse_return refused a missing return type"),
        };
        sig.output = syn::parse_quote! {
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        };
    }
    Ok(Method {
        is_async,
        name: sig.ident.to_string(),
        ident: sig.ident.clone(),
        params,
        ctx_position,
        returns,
    })
}

/// Removes `#[default(expr)]` from a parameter, returning the expression.
fn take_default(attrs: &mut Vec<syn::Attribute>) -> syn::Result<Option<Expr>> {
    let mut found = None;
    let mut error = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident("default") {
            return true;
        }
        match attr.parse_args::<Expr>() {
            Ok(expr) => found = Some(expr),
            Err(err) => error = Some(err),
        }
        false
    });
    match error {
        Some(err) => Err(err),
        None => Ok(found),
    }
}

fn is_context(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    let Type::Path(path) = reference.elem.as_ref() else {
        return false;
    };
    path.path
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "CallContext")
}

fn parse_return(output: &ReturnType) -> syn::Result<Returns> {
    let error = |span: Span| {
        syn::Error::new(
            span,
            "service methods return `Result<T, E>` where E converts into vgirpc::RpcError \
             (or a `Result` alias such as `anyhow::Result<T>` or `io::Result<T>`)",
        )
    };
    let ReturnType::Type(_, ty) = output else {
        return Err(error(output.span()));
    };
    let ok = result_ok_type(ty).ok_or_else(|| error(ty.span()))?;
    if let Type::Tuple(tuple) = &ok
        && tuple.elems.is_empty()
    {
        return Ok(Returns::Nothing);
    }
    if let Type::Path(path) = &ok
        && let Some(last) = path.path.segments.last()
        && last.ident == "Stream"
    {
        let header = match &last.arguments {
            PathArguments::None => None,
            PathArguments::AngleBracketed(args) => match args.args.first() {
                Some(GenericArgument::Type(h)) if args.args.len() == 1 => Some(h.clone()),
                _ => return Err(syn::Error::new(args.span(), "expected `Stream<Header>`")),
            },
            PathArguments::Parenthesized(p) => {
                return Err(syn::Error::new(p.span(), "expected `Stream<Header>`"));
            }
        };
        return Ok(Returns::Stream { header });
    }
    check_wire_type(&ok)?;
    Ok(Returns::Value(ok))
}

/// `T` of `Result<T, E>`, or of an alias named `…Result<T>` that fixes the
/// error type (`anyhow::Result<T>`, `io::Result<T>`, `MyResult<T>`).
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let arity_fits = match args.args.len() {
        2 => last.ident == "Result",
        1 => last.ident.to_string().ends_with("Result"),
        _ => false,
    };
    if !arity_fits {
        return None;
    }
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    }
}

/// Refuses, with the fix, the types that never have an Arrow form;
/// every other type is left to the `ArrowValue` bound, whose error lists
/// what is supported.
fn check_wire_type(ty: &Type) -> syn::Result<()> {
    let refuse = |hint: &str| Err(syn::Error::new(ty.span(), hint.to_owned()));
    match ty {
        Type::Reference(reference) => {
            let is_str = matches!(&*reference.elem, Type::Path(p) if p.path.is_ident("str"));
            if is_str {
                refuse("parameters and results are owned values: use `String` instead of `&str`")
            } else if matches!(&*reference.elem, Type::Slice(_)) {
                refuse("parameters and results are owned values: use `Vec<T>` instead of a slice")
            } else {
                refuse(
                    "parameters and results are owned values: take the type itself, not a reference",
                )
            }
        }
        Type::Tuple(tuple) if !tuple.elems.is_empty() => {
            refuse("tuples have no Arrow type: use a struct with `#[derive(vgirpc::ArrowStruct)]`")
        }
        Type::Array(_) => refuse(
            "arrays have no Arrow type of their own: use `Vec<T>`, or \
             `vgirpc::FixedBinary<N>` for fixed-size bytes",
        ),
        Type::Path(path) if path.path.is_ident("usize") || path.path.is_ident("isize") => refuse(
            "`usize` and `isize` have no fixed width on the wire: use `u64` or `i64` \
             (or a narrower fixed-width integer)",
        ),
        Type::Path(path) if path.path.is_ident("char") => {
            refuse("`char` has no Arrow type: use `String`")
        }
        _ => Ok(()),
    }
}

/// `path` as written in a doc link.
fn path_text(path: &Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}
