// Command testapp is the application container of the real-node tests (test/e2e).
//
//	testapp serve [-listen :8080,:9100]  answers every TCP connection with one JSON line naming
//	                                     the peer address it saw, then closes it:
//	                                     {"listener":":8080","peer":"10.244.0.7:41234","local":"..."}
//	testapp dial HOST:PORT               connects, prints the line it was answered, exits 0
//	testapp get URL                      prints the body of an HTTP GET, exits 0 on 2xx
package main
