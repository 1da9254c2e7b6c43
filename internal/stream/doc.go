// Package stream keeps one resource's stream of changes alive and passes what it sees to a Sink, and
// nowhere else. One Stream runs one loop (Run); each turn makes one request and ends in one named
// outcome, which decides the next request.
//
// # Requests
//
// A stream is always in one of three modes, chosen at the top of each turn:
//
//	mode        when                                   request
//	watchList   no resume point, WatchList not refused  watch, sendInitialEvents=true, NotOlderThan, RV=""
//	                                                    (after a 410: RV=the expired resume point)
//	resume      a resume point (rv != "")               plain watch from rv, no initial events
//	listWatch   no resume point, fallback on            paged LIST; its resourceVersion becomes the resume point
//
// A watchList turn is a complete state (BeginSync … EndSync) followed by changes on the same watch; a
// listWatch turn is only the complete state, and the next turn resumes from the list's
// resourceVersion. Only the initial-events-end bookmark, a LIST's resourceVersion, or an event or
// bookmark after the initial state is a resume point.
//
// # Outcomes
//
// Every turn ends with one of these; next names each and says where the stream goes:
//
//	outcome                          reason        next turn
//	fallback LIST completed          listed        resume from the list's resourceVersion
//	watch ended by the server        ended         resume, no pause
//	410 Gone / Expired / RV too large expired      watchList (or listWatch), no pause; the state is diffed
//	WatchList after a 410 answered    expired       the same WatchList after the server's pause (1 s), a
//	  "too large" (a replica behind)                maxTooLarge times; then RV="" (its current state)
//	the state is older than what was  rolled-back   watchList again once the kind was re-baselined
//	  resumed from (etcd restored)
//	the Sink returned ErrResync, or   resync        watchList (or listWatch), no pause
//	  Resync was called
//	WatchList refused (422/400),      fallback      listWatch from now on, logged once
//	  ignored (an event or bookmark
//	  that only a plain watch sends),
//	  no end bookmark in time, or
//	  maxInitialErrors ERROR events
//	  before the end bookmark
//	permanent error before open       –             Run returns it (Forbidden, Unauthorized, NotFound,
//	                                                MethodNotSupported, BadRequest, Invalid)
//	NotFound after open (a CRD        error         the same mode after the backoff; logged once until
//	  deleted, a group not served yet)              the stream opens again
//	any other error, a watch cut      error         the same mode after the backoff (or Retry-After)
//	  during the initial state, a
//	  watch that ends at once, an
//	  unknown event type
//
// client-go turns a watch event it cannot decode (an unknown type) into an ERROR event with code 500,
// so during the initial state it counts toward maxInitialErrors; the stream's own unknown-type
// outcome is for a watch.Interface that passes one through. An object of the stream's own kind read
// as protobuf is decoded only when it is delivered (kinds.Lazy): a failure to decode it is then an
// error the Sink returns (outcome error), and an object that is not delivered is never decoded.
//
// A stream is open once the server answered with data: the first event of a watch, or a LIST page.
// An empty watch that client-go returns after a connection error is not an answer. A stream is
// synced once its first complete state went through the Sink.
package stream
