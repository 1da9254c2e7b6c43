// Package reader holds the types a watchlist reader delivers: the RetrieveType bits that choose what
// to watch, and Entry, one change to one object, with its ChangeType and ObjectType.
package reader
