//! One page of a list read in key order, and whether another follows.

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
}

impl<T> Page<T> {
    /// From up to `first + 1` items read for a page of `first`: asking for one more than the
    /// page holds is how a list tells there is a next page without counting.
    pub fn from_lookahead(mut items: Vec<T>, first: i64) -> Self {
        let first = usize::try_from(first).unwrap_or(0);
        let has_next_page = items.len() > first;
        items.truncate(first);
        Self {
            items,
            has_next_page,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Page;

    #[test]
    fn the_extra_item_only_says_there_is_more() {
        let page = Page::from_lookahead(vec![1, 2, 3], 2);
        assert_eq!(page.items, vec![1, 2]);
        assert!(page.has_next_page);
        let page = Page::from_lookahead(vec![1, 2], 2);
        assert!(!page.has_next_page);
        let page = Page::from_lookahead(vec![1], 0);
        assert!(page.items.is_empty() && page.has_next_page);
    }
}
