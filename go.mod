module github.com/jobrun/jobrun

go 1.26
