module nodelet.local/conformance/netutil

go 1.22
