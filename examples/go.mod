module github.com/routinglayer/routing/examples

go 1.26.0
