package dump

import "sync"

// pageCache is a small LRU cache of decoded pages keyed by PFN, so that
// reads walking a structure within one page decode it once. It is safe
// for concurrent use; the pages it hands out must not be modified.
type pageCache struct {
	mu    sync.Mutex
	max   int
	items map[uint64]*cachedPage
	head  cachedPage // sentinel: head.next is the most recently used
}

type cachedPage struct {
	pfn        uint64
	data       []byte
	prev, next *cachedPage
}

func newPageCache(max int) *pageCache {
	c := &pageCache{max: max, items: make(map[uint64]*cachedPage, max)}
	c.head.next, c.head.prev = &c.head, &c.head
	return c
}

func (c *pageCache) unlink(e *cachedPage) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (c *pageCache) pushFront(e *cachedPage) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

func (c *pageCache) get(pfn uint64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[pfn]
	if !ok {
		return nil
	}
	c.unlink(e)
	c.pushFront(e)
	return e.data
}

func (c *pageCache) put(pfn uint64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[pfn]; ok {
		e.data = data
		c.unlink(e)
		c.pushFront(e)
		return
	}
	var e *cachedPage
	if len(c.items) >= c.max {
		e = c.head.prev
		c.unlink(e)
		delete(c.items, e.pfn)
	} else {
		e = new(cachedPage)
	}
	e.pfn, e.data = pfn, data
	c.items[pfn] = e
	c.pushFront(e)
}
