//! Four small federation subgraphs written with async-graphql, in the shape of the classic
//! federation demo: accounts (User), products (Product, Media, SearchResult), inventory
//! (extends Product with `@requires`), reviews (Review, extends User/Product/Book, `@provides`).

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, ID, Interface, Object, Result, Schema, SimpleObject,
    Union,
};

// ---------- accounts ----------

#[derive(SimpleObject, Clone)]
pub struct User {
    id: ID,
    name: String,
    username: String,
}

fn users() -> Vec<User> {
    vec![
        User {
            id: ID::from("1"),
            name: "Ada Lovelace".into(),
            username: "ada".into(),
        },
        User {
            id: ID::from("2"),
            name: "Alan Turing".into(),
            username: "alan".into(),
        },
    ]
}

pub struct AccountsQuery;

#[Object(name = "Query")]
impl AccountsQuery {
    async fn me(&self) -> Option<User> {
        users().into_iter().next()
    }

    async fn user(&self, id: ID) -> Option<User> {
        users().into_iter().find(|u| u.id == id)
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        users().into_iter().find(|u| u.id == id)
    }
}

pub type AccountsSchema = Schema<AccountsQuery, EmptyMutation, EmptySubscription>;

pub fn accounts() -> AccountsSchema {
    Schema::build(AccountsQuery, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish()
}

// ---------- products ----------

#[derive(SimpleObject, Clone)]
pub struct Product {
    upc: String,
    name: String,
    price: i32,
    weight: i32,
}

#[derive(SimpleObject, Clone)]
pub struct Book {
    id: ID,
    title: String,
    pages: i32,
}

#[derive(SimpleObject, Clone)]
pub struct Movie {
    id: ID,
    title: String,
    minutes: i32,
}

#[derive(Interface, Clone)]
#[graphql(field(name = "id", ty = "&ID"), field(name = "title", ty = "&String"))]
pub enum Media {
    Book(Book),
    Movie(Movie),
}

#[derive(Union, Clone)]
pub enum SearchResult {
    Product(Product),
    Book(Book),
}

fn products() -> Vec<Product> {
    vec![
        Product {
            upc: "1".into(),
            name: "Table".into(),
            price: 899,
            weight: 100,
        },
        Product {
            upc: "2".into(),
            name: "Couch".into(),
            price: 1299,
            weight: 1000,
        },
        Product {
            upc: "3".into(),
            name: "Chair".into(),
            price: 54,
            weight: 50,
        },
    ]
}

fn book() -> Book {
    Book {
        id: ID::from("b1"),
        title: "Dune".into(),
        pages: 412,
    }
}

fn movie() -> Movie {
    Movie {
        id: ID::from("m1"),
        title: "Alien".into(),
        minutes: 117,
    }
}

pub struct ProductsQuery;

#[Object(name = "Query")]
impl ProductsQuery {
    async fn top_products(&self, #[graphql(default = 5)] first: i32) -> Vec<Product> {
        products()
            .into_iter()
            .take(usize::try_from(first).unwrap_or(0))
            .collect()
    }

    async fn product(&self, upc: String) -> Option<Product> {
        products().into_iter().find(|p| p.upc == upc)
    }

    async fn media(&self) -> Vec<Media> {
        vec![Media::Book(book()), Media::Movie(movie())]
    }

    async fn search(&self, term: String) -> Vec<SearchResult> {
        let _ = term;
        vec![
            SearchResult::Product(products()[0].clone()),
            SearchResult::Book(book()),
        ]
    }

    async fn secret(&self) -> Option<String> {
        Some("hidden".into())
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
        products().into_iter().find(|p| p.upc == upc)
    }

    #[graphql(entity)]
    async fn find_book_by_id(&self, id: ID) -> Option<Book> {
        (id == "b1").then(book)
    }

    #[graphql(entity)]
    async fn find_movie_by_id(&self, id: ID) -> Option<Movie> {
        (id == "m1").then(movie)
    }
}

pub type ProductsSchema = Schema<ProductsQuery, EmptyMutation, EmptySubscription>;

pub fn products_schema() -> ProductsSchema {
    Schema::build(ProductsQuery, EmptyMutation, EmptySubscription)
        .enable_federation()
        .register_output_type::<Media>()
        .finish()
}

// ---------- inventory ----------

pub struct InventoryProduct {
    upc: String,
    price: i32,
    weight: i32,
}

#[Object(name = "Product", extends)]
impl InventoryProduct {
    #[graphql(external)]
    async fn upc(&self) -> &String {
        &self.upc
    }

    #[graphql(external)]
    async fn price(&self) -> i32 {
        self.price
    }

    #[graphql(external)]
    async fn weight(&self) -> i32 {
        self.weight
    }

    async fn in_stock(&self) -> bool {
        self.upc != "3"
    }

    /// Free shipping above 1000, otherwise half the weight: needs both inputs from products.
    #[graphql(requires = "price weight")]
    async fn shipping_estimate(&self) -> i32 {
        if self.price > 1000 {
            0
        } else {
            self.weight / 2
        }
    }
}

pub struct InventoryQuery;

#[Object(name = "Query")]
impl InventoryQuery {
    #[graphql(entity)]
    async fn find_product_by_upc(
        &self,
        #[graphql(key)] upc: String,
        price: Option<i32>,
        weight: Option<i32>,
    ) -> InventoryProduct {
        // -1 makes a missing @requires input visible in assertions.
        InventoryProduct {
            upc,
            price: price.unwrap_or(-1),
            weight: weight.unwrap_or(-1),
        }
    }
}

pub type InventorySchema = Schema<InventoryQuery, EmptyMutation, EmptySubscription>;

pub fn inventory() -> InventorySchema {
    Schema::build(InventoryQuery, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish()
}

// ---------- reviews ----------

#[derive(Clone)]
pub struct Review {
    id: ID,
    body: String,
    author_id: ID,
    upc: String,
}

fn reviews() -> Vec<Review> {
    let review = |id: &str, body: &str, author: &str, upc: &str| Review {
        id: ID::from(id),
        body: body.into(),
        author_id: ID::from(author),
        upc: upc.into(),
    };
    vec![
        review("r1", "Love it!", "1", "1"),
        review("r2", "Too expensive.", "1", "2"),
        review("r3", "Could be better.", "2", "3"),
        review("r4", "Prefer something else.", "2", "1"),
    ]
}

fn username(id: &ID) -> String {
    match id.as_str() {
        "1" => "ada".into(),
        _ => "alan".into(),
    }
}

#[Object]
impl Review {
    async fn id(&self) -> &ID {
        &self.id
    }

    async fn body(&self) -> &String {
        &self.body
    }

    #[graphql(provides = "username")]
    async fn author(&self) -> ReviewsUser {
        ReviewsUser {
            id: self.author_id.clone(),
        }
    }

    async fn product(&self) -> ReviewsProduct {
        ReviewsProduct {
            upc: self.upc.clone(),
        }
    }
}

pub struct ReviewsUser {
    id: ID,
}

#[Object(name = "User", extends)]
impl ReviewsUser {
    #[graphql(external)]
    async fn id(&self) -> &ID {
        &self.id
    }

    #[graphql(external)]
    async fn username(&self) -> String {
        username(&self.id)
    }

    async fn reviews(&self) -> Vec<Review> {
        reviews()
            .into_iter()
            .filter(|r| r.author_id == self.id)
            .collect()
    }
}

pub struct ReviewsProduct {
    upc: String,
}

#[Object(name = "Product", extends)]
impl ReviewsProduct {
    #[graphql(external)]
    async fn upc(&self) -> &String {
        &self.upc
    }

    async fn reviews(&self) -> Vec<Review> {
        reviews()
            .into_iter()
            .filter(|r| r.upc == self.upc)
            .collect()
    }

    /// Fails for product 2, to test error path rebasing.
    async fn review_summary(&self) -> Result<Option<String>> {
        if self.upc == "2" {
            return Err("summary unavailable".into());
        }
        let count = reviews().iter().filter(|r| r.upc == self.upc).count();
        Ok(Some(format!("{count} reviews")))
    }
}

pub struct ReviewsBook {
    id: ID,
}

#[Object(name = "Book")]
impl ReviewsBook {
    async fn id(&self) -> &ID {
        &self.id
    }

    async fn review_count(&self) -> i32 {
        3
    }
}

pub struct ReviewsQuery;

#[Object(name = "Query")]
impl ReviewsQuery {
    async fn reviews(&self) -> Vec<Review> {
        reviews()
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> ReviewsUser {
        ReviewsUser { id }
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> ReviewsProduct {
        ReviewsProduct { upc }
    }

    #[graphql(entity)]
    async fn find_book_by_id(&self, id: ID) -> ReviewsBook {
        ReviewsBook { id }
    }
}

pub struct ReviewsMutation;

#[Object(name = "Mutation")]
impl ReviewsMutation {
    async fn add_review(&self, ctx: &Context<'_>, upc: String, body: String) -> Review {
        let _ = ctx;
        Review {
            id: ID::from("r-new"),
            body,
            author_id: ID::from("1"),
            upc,
        }
    }
}

pub type ReviewsSchema = Schema<ReviewsQuery, ReviewsMutation, EmptySubscription>;

pub fn reviews_schema() -> ReviewsSchema {
    Schema::build(ReviewsQuery, ReviewsMutation, EmptySubscription)
        .enable_federation()
        .finish()
}
