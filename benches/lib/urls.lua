-- wrk script: cycles through the request paths listed in a file (wrk ... -s urls.lua -- FILE),
-- each thread starting at a different line.
local paths = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  i = math.random(#paths)
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
