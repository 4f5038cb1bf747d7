#include <shuttle.h>


static void
hello(shuttle_req *req, shuttle_res *res)
{
    shuttle_text(res, 200, "Hello, world!\n");
}


SHUTTLE_MAIN(app)
{
    shuttle_get(app, "/hello", hello);
    return 0;
}
