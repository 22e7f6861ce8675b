"""A small Flask app: a page, a JSON route, a form POST and a streamed response."""

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
        return "flask index\n"


@app.route("/api/<int:item>")
def api(item):
        return jsonify(item=item, double=item * 2, args=request.args.to_dict())


@app.route("/form", methods=["POST"])
def form():
        return "name=%s count=%d\n" % (request.form.get("name", ""), len(request.form))


@app.route("/upload", methods=["POST"])
def upload():
        data = request.get_data()
        return jsonify(length=len(data), first=data[:8].decode("latin-1"))


@app.route("/stream")
def stream():
        def gen():
                for i in range(3):
                        yield "line %d\n" % i
        return Response(gen(), mimetype="text/plain")


@app.route("/missing-on-purpose")
def missing():
        return "nope", 404
