module github.com/routinglayer/routing/plugins/riffyn

go 1.26.0

replace github.com/routinglayer/routing/sdk => ../../sdk
